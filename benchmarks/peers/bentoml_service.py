"""BentoML serving the encoder at POST /encode (a multipart file named "file"), one worker.

bentoml serve benchmarks.peers.bentoml_service:Encoder --port 8002
"""

from pathlib import Path

import bentoml

from benchmarks.peers.encoder import answer, pixels, session


@bentoml.service(workers=1)
class Encoder:
    def __init__(self) -> None:
        self.session = session()

    @bentoml.api
    def encode(self, file: Path) -> dict:
        mu, sigma = self.session.run(None, {"image": pixels(file.read_bytes())})
        return answer(mu, sigma)
