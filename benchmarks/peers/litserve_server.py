"""LitServe serving the encoder at POST /predict (a multipart file named "file").

python -m benchmarks.peers.litserve_server --port 8001 --max-batch 8
"""

import argparse

import litserve as ls
import numpy as np

from benchmarks.peers.encoder import answer, pixels, session


class EncoderAPI(ls.LitAPI):
    def setup(self, device):
        self.session = session()

    def decode_request(self, request):
        return pixels(request["file"].file.read())

    def batch(self, inputs):
        return np.concatenate(inputs)

    def predict(self, x):
        return self.session.run(None, {"image": x})

    def unbatch(self, output):
        mu, sigma = output
        return [(mu[i : i + 1], sigma[i : i + 1]) for i in range(len(mu))]

    def encode_response(self, output):
        return answer(*output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=1)
    args = parser.parse_args()
    api = EncoderAPI(max_batch_size=args.max_batch, batch_timeout=0.001 if args.max_batch > 1 else 0.0)
    ls.LitServer(api, accelerator="cpu", workers_per_device=1).run(port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
