"""The latent explorer: a page served from files in the package (plain ES modules, no CDN, no build
step) at /explorer/, where / leads. Public, like /docs: the page holds no data, and asks for the
API key when the service requires one."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

PAGE_PATH = "/explorer"
FILES = Path(__file__).parent / "explorer"


def is_page(path: str) -> bool:
    return path in ("/", PAGE_PATH) or path.startswith(PAGE_PATH + "/")


def install(app: FastAPI) -> None:
    app.mount(PAGE_PATH, StaticFiles(directory=FILES, html=True), name="explorer")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PAGE_PATH}/")
