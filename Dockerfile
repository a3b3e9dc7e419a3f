# syntax=docker/dockerfile:1
# Three stages from one base: `build` makes a virtual environment with the serving dependencies,
# `runtime` (the default) serves the bundled models with no torch and no compilers, and `train`
# adds torch to train and export new models (docker-compose's `train` profile).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY service ./service
COPY training ./training
# pip and setuptools are not needed to run: leave them out of the image.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --quiet . \
    && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

FROM python:3.11-slim AS train
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --create-home vae && mkdir -p /models /runs && chown vae /models /runs
WORKDIR /src
COPY wheels/ /wheels/
COPY pyproject.toml README.md ./
COPY contract ./contract
COPY service ./service
COPY training ./training
# An empty TORCH_INDEX_URL means: torch only from wheels/ (and the default index, which would
# bring a CUDA build). The index is only consulted when it is set.
RUN pip install --quiet --find-links /wheels ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} ".[train]" \
    && rm -rf /wheels
USER vae
ENTRYPOINT ["vae-train", "train", "--data-dir", "/data", "--out-dir", "/runs/current", "--export-dir", "/models/current"]

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home vae && mkdir -p /models && chown vae /models
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY models ./models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VAE_HOST=0.0.0.0 \
    VAE_PORT=8000 \
    VAE_MODEL_REPOSITORY=/app/models \
    VAE_WORKERS=1 \
    VAE_ORT_THREADS=1
USER vae
EXPOSE 8000
# Shell form: this podman's Docker API splits the list form wrongly. Ready means warmed up.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ['VAE_PORT'], timeout=2)" || exit 1
STOPSIGNAL SIGTERM
CMD ["vae-serve"]
