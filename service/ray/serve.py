"""The service as a Ray Serve application, for teams that already run Ray: each replica runs the
same HTTP app `vae-serve` runs (service.http.app.create_app, its lifespan included), so the routes,
errors, limits and request ids are the same; Ray's proxy adds its own cost per request (README,
Ray). A replica is healthy while its engine is ready, so Serve replaces one whose models are gone.

    serve run deploy/ray/serve.yaml

`build` is the config's import_path; its `args` are the service's settings (model_repository,
max_batch, ...), as VAE_* variables would give them."""

from ray import serve
from ray.serve import Application
from starlette.types import ASGIApp

from service.core.engine import NOT_READY, Engine
from service.http.app import create_app
from service.settings import Settings


@serve.deployment
@serve.ingress()
class VAEService:
    def __init__(self, settings: dict):
        self.engine = Engine(Settings(**settings))

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return create_app(engine=self.engine)

    def check_health(self) -> None:
        if not self.engine.ready:
            raise RuntimeError(NOT_READY)


def build(args: dict) -> Application:
    Settings(**args)  # a wrong setting fails `serve run` at once, rather than every replica in turn
    return VAEService.bind(args)
