"""MLServer serving the encoder through the Open Inference Protocol, with its adaptive batching
(mlserver/model-settings.json): FP32 "image" [N, 1, 28, 28] in, "mu" and "sigma" out."""

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from benchmarks.peers.encoder import session


class Encoder(MLModel):
    async def load(self) -> bool:
        self.session = session()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = NumpyCodec.decode_input(payload.inputs[0])
        mu, sigma = self.session.run(None, {"image": images.astype("float32")})
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output("mu", mu), NumpyCodec.encode_output("sigma", sigma)],
        )
