"""The serving core: the model repository, verified models, the batcher, the one picture pipeline,
the novelty score and the generation maths. It knows no web framework; the front ends in
service.http (REST and the Open Inference Protocol over REST) translate requests into its calls.

Encoding a folder of pictures with it, no server::

    from pathlib import Path
    from service.core import Engine

    with Engine.started() as engine:
        files = sorted(Path("digits").glob("*.png"))
        for path, encoding in zip(files, engine.encode_files([p.read_bytes() for p in files])):
            print(path.name, encoding.mu)
"""

from service.core.engine import Encoding, Engine

__all__ = ["Encoding", "Engine"]
