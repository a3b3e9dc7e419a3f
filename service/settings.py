"""The service's settings: one typed object, read from VAE_* environment variables."""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.limits import MAX_BATCH

# The bundled models, found from the package rather than the working directory.
BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAE_", env_ignore_empty=True, frozen=True)

    model_repository: Path = Field(
        BUNDLED_MODELS, description="Folder of model folders, each served under its folder's name."
    )
    model_dir: Path | None = Field(
        None, description="One model folder (encoder.onnx, decoder.onnx, model.json) served alone, instead."
    )
    default_model: str | None = Field(
        None, description="The model the unprefixed routes serve: by default the only one, or 'mnist'."
    )
    host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 in the container.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on; 0 picks a free one, which the log names.")
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol over gRPC, beside HTTP; off unless set (8001 in the image). "
        "0 picks a free one, which the log names.",
    )
    workers: PositiveInt = Field(1, description="uvicorn worker processes.")
    ort_threads: PositiveInt = Field(1, description="onnxruntime intra-op threads per worker.")
    picture_threads: PositiveInt = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        description="Threads that decode and prepare uploaded pictures off the event loop (default: the usable cores).",
    )
    max_body_bytes: PositiveInt = Field(16 * 1024 * 1024, description="Largest request body accepted (413 above).")
    max_pixels: PositiveInt = Field(25_000_000, description="Largest image (width x height) decoded (422 above).")
    max_batch: PositiveInt = Field(MAX_BATCH, description="Most images per request, and per model call.")
    max_samples: PositiveInt = Field(64, description="Largest n for /sample.")
    max_upscale: PositiveInt = Field(16, description="Largest upscale factor for returned PNGs.")
    batch_wait_ms: float = Field(
        0.5,
        ge=0,
        le=100,
        description="Once two or more requests wait for the model, how long its call may wait for more to join the "
        "batch; a request alone never waits (benchmarks.compare sets this against 0).",
    )
    max_in_flight: PositiveInt = Field(256, description="Requests in progress beyond which new ones get 503.")
    request_timeout_s: float = Field(30.0, gt=0, description="Time limit for one request, upload included.")
    api_key: SecretStr | None = Field(None, description="If set, required as 'Authorization: Bearer' or X-API-Key.")
    metrics_token: SecretStr | None = Field(
        None,
        description="If set, /metrics also takes it as 'Authorization: Bearer', so that a scraper needs no "
        "data-plane key.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS, comma-separated; none by default."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return [origin.strip() for origin in value.split(",") if origin.strip()] if isinstance(value, str) else value
