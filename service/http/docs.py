"""The API's documentation page, served from files in the installed packages: no CDN, so it works
on an air-gapped machine. The page and the schema are public (they hold no data); with VAE_API_KEY
set, the schema declares the key so that the page's "Authorize" button sends it with every call."""

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from service.http.problems import ProblemDetails
from service.http.responses import DecodedImage, ModelInput, NoveltyScore

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
SCHEMA_PATH = "/openapi.json"
PUBLIC_PATHS = (DOCS_PATH, SCHEMA_PATH)  # and everything under ASSETS_PATH

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer VAE_API_KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "X-API-Key: VAE_API_KEY"},
}


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(ASSETS_PATH + "/")


def install(app: FastAPI, declared: list[APIRoute], requires_key: bool) -> None:
    """/docs from the swagger-ui-bundle package, and the schema of the app's and the declared
    routes (service.http.routing.schema_routes), with the key's security schemes."""
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=SCHEMA_PATH,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )

    def schema() -> dict:
        if app.openapi_schema is None:
            routes = [*declared, *app.routes]
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
            for model in (DecodedImage, ModelInput, NoveltyScore):  # referenced from the image responses' JSON schemas
                schemas[model.__name__] = model.model_json_schema()
            if requires_key:
                document["components"]["securitySchemes"] = SECURITY_SCHEMES
                document["security"] = [{"bearer": []}, {"apiKey": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema
