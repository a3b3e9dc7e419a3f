"""NVIDIA Triton serving the encoder through PyTriton (which bundles the tritonserver binary; CPU
here): the Open Inference Protocol over REST and gRPC, FP32 "image" [N, 1, 28, 28] in, "mu" and
"sigma" out, onnxruntime on one thread in Triton's Python backend, dynamic batching to 64 with a
500 us queue delay.

python -m benchmarks.peers.pytriton_server --port 8000 --grpc-port 8001
"""

import argparse

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from benchmarks.peers.encoder import session

MAX_BATCH = 64
QUEUE_DELAY_US = 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args()
    encoder = session()

    @batch
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        mu, sigma = encoder.run(None, {"image": image})
        return {"mu": mu, "sigma": sigma}

    config = TritonConfig(http_address="127.0.0.1", http_port=args.port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port, allow_metrics=False)  # fmt: skip
    with Triton(config=config) as triton:
        triton.bind(
            model_name="encoder",
            infer_func=infer,
            inputs=[Tensor(name="image", dtype=np.float32, shape=(1, 28, 28))],
            outputs=[
                Tensor(name="mu", dtype=np.float32, shape=(-1,)),
                Tensor(name="sigma", dtype=np.float32, shape=(-1,)),
            ],
            config=ModelConfig(
                max_batch_size=MAX_BATCH, batcher=DynamicBatcher(max_queue_delay_microseconds=QUEUE_DELAY_US)
            ),
        )
        triton.serve()


if __name__ == "__main__":
    main()
