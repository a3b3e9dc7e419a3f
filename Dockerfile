# syntax=docker/dockerfile:1
# Three stages from one base: `build` makes a virtual environment with the serving dependencies,
# `runtime` (the default) serves the bundled models with no torch and no compilers, and `train`
# adds torch to train and export new models (docker-compose's `train` profile).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# strip, for the debug symbols of the extension modules below (this stage only).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The service and the contract only: no training package, so no `vae-train` that could not import.
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY service ./service
ARG SITE=/opt/venv/lib/python3.11/site-packages
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-compile . \
    && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \
    && rm /opt/venv/bin/vae-train
# What the service never loads (README, "The image", lists what each package weighs):
# - onnxruntime's C API library (the Python binding links the runtime in itself), and its
#   conversion, quantisation and transformer-optimisation tools;
# - numpy's test suites, build tools (distutils, f2py), C headers and SIMD self-test module;
# - Pillow's AVIF and font modules with the libraries only they link (uploads are PNG, JPEG, GIF,
#   BMP or WebP, and the service draws no text);
# - Swagger UI's source maps;
# - the debug symbols of cc3d, uvloop and httptools, which their wheels ship unstripped (the
#   other wheels' libraries are stripped, or patched by auditwheel and must stay as they are).
RUN cd $SITE \
    && rm -r onnxruntime/capi/libonnxruntime.so.* onnxruntime/tools onnxruntime/transformers onnxruntime/quantization \
    && find . -depth -type d -name tests -exec rm -r {} + \
    && rm -r numpy/distutils numpy/f2py numpy/_core/include numpy/_core/_simd.*.so \
    && rm -r PIL/_avif.*.so PIL/_imagingft.*.so pillow.libs/libavif-* pillow.libs/libfreetype-* \
        pillow.libs/libharfbuzz-* pillow.libs/libbrotli* \
    && find swagger_ui_bundle -name "*.map" -delete \
    && strip --strip-unneeded cc3d/*.so uvloop/*.so httptools/parser/*.so
# Bytecode for what the service imports at start-up (the root file system is read-only when
# deployed, so nothing can be cached later); the rest compiles in memory if ever imported.
COPY models/mnist /src/models/mnist
RUN VAE_MODEL_DIR=/src/models/mnist /opt/venv/bin/python -c "from service.cli import main; \
from service.http.app import create_app; from service.core.repository import ModelRepository; \
from service.settings import Settings; import multipart; from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, \
PngImagePlugin, WebPImagePlugin; create_app(); ModelRepository(Settings()).load_all()" \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib/python3.11/site-packages/uvicorn

FROM python:3.11-slim AS train
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --create-home vae && mkdir -p /runs && chown vae /runs
# The bundled models, as in the runtime image: whichever service first mounts compose's models
# volume fills it with them, and the trained ones join them there.
COPY --chown=vae models /models
WORKDIR /src
COPY wheels/ /wheels/
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY service ./service
COPY training ./training
# torch first, as `make test` does: a torch wheel in wheels/ is taken alone (no index is asked, so
# an unreachable one costs nothing); else the pinned version from TORCH_INDEX_URL (empty: the
# default index, whose Linux build is the CUDA one). The extras then find it installed.
RUN if ls /wheels/torch-*.whl >/dev/null 2>&1; then \
        pip install --quiet --no-index --no-deps --find-links /wheels "$(grep -o 'torch==[0-9.]*' pyproject.toml)"; \
    else \
        pip install --quiet "$(grep -o 'torch==[0-9.]*' pyproject.toml)" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}; \
    fi \
    && pip install --quiet --find-links /wheels ".[train]" \
    && rm -rf /wheels
USER vae
ENTRYPOINT ["vae-train", "train", "--data-dir", "/data", "--out-dir", "/runs/current", "--export-dir", "/models/current"]

# `ray` runs on a Ray cluster (deploy/ray: KubeRay's RayService and RayJob): the service with Ray
# and Ray Data (the `ray` extra), the models at /app/models as in the runtime image, and Ray's own
# command line; KubeRay starts it with `ray start`, in /app, so serve.yaml's `models` is found there.
FROM python:3.11-slim AS ray
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --create-home vae
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY service ./service
RUN pip install --quiet --no-compile ".[ray]"
WORKDIR /app
COPY models ./models
ENV VAE_MODEL_REPOSITORY=/app/models
USER vae

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home vae
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Owned by vae: compose mounts a volume here that starts as a copy of them, and its train service,
# which runs as vae too, writes new models beside them.
COPY --chown=vae models ./models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VAE_HOST=0.0.0.0 \
    VAE_PORT=8000 \
    VAE_GRPC_PORT=8001 \
    VAE_MODEL_REPOSITORY=/app/models \
    VAE_WORKERS=1 \
    VAE_ORT_THREADS=1
USER vae
EXPOSE 8000 8001
# Shell form: this podman's Docker API splits the list form wrongly. Ready means warmed up.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ['VAE_PORT'], timeout=2)" || exit 1
STOPSIGNAL SIGTERM
CMD ["vae-serve"]
