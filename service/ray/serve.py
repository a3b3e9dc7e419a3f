"""The service as a Ray Serve application, for teams that already run Ray: each replica runs the
same HTTP app `vae-serve` runs (service.http.app.create_app, its lifespan included), so the routes,
errors, limits and request ids are the same; Ray's proxy adds its own cost per request (README,
Ray). A replica is healthy while its engine is ready, so Serve replaces one whose models are gone.

    serve run deploy/ray/serve.yaml

`build` is the config's import_path; its `args` are the service's settings (model_repository,
max_batch, ...), as VAE_* variables would give them."""

from ray import serve
from ray.serve import Application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.engine import NOT_READY, Engine
from service.http.app import create_app
from service.settings import Settings


def without_request_id_header(app: ASGIApp) -> ASGIApp:
    """Ray's proxy gives each request its id as X-Request-ID (the caller's, or one it makes), which the
    app adopts, and puts that id on the answer itself: the app's own copy would be a second header."""

    async def answered(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message["headers"] if k.lower() != b"x-request-id"]
            await send(message)

        await app(scope, receive, sending if scope["type"] == "http" else send)

    return answered


@serve.deployment
@serve.ingress()
class VAEService:
    def __init__(self, settings: dict):
        self.engine = Engine(Settings(**settings))

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return without_request_id_header(create_app(engine=self.engine))

    def check_health(self) -> None:
        if not self.engine.ready:
            raise RuntimeError(NOT_READY)


def build(args: dict) -> Application:
    Settings(**args)  # a wrong setting fails `serve run` at once, rather than every replica in turn
    return VAEService.bind(args)
