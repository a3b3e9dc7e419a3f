# The two commands of the quick start, and the checks CI runs. Needs Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help serve test test-all container-check bench-smoke mutation mutation-guards proto clean

help:  ## list the targets and what each does
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving only: no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# torch as pinned in pyproject.toml. PyPI's build for Linux is the CUDA one (~2.7 GB of nvidia-*
# wheels), so torch comes first from PyTorch's CPU index (about 200 MB), unless pip finds it without
# any index (a local wheel folder, as on an offline machine); the extras then find it installed and
# add its few plain dependencies.
# For a GPU build: make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
TORCH := $(shell grep -o 'torch==[0-9.]*' pyproject.toml)
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu

$(VENV)/.torch: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-index --no-deps '$(TORCH)' 2>/dev/null \
		|| $(BIN)/pip install --quiet '$(TORCH)' --index-url $(TORCH_INDEX_URL)
	touch $@

# Everything: training, the test tools and the Python client (its own package: client/).
$(VENV)/.dev: pyproject.toml client/pyproject.toml $(VENV)/.torch | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]' -e ./client
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve  ## set up, then serve the bundled models (models/) on http://127.0.0.1:8000 (PORT=8080 make serve)
	$(BIN)/vae-serve $(if $(PORT),--port $(PORT))

test: $(VENV)/.dev  ## set up, then lint, check the direction of imports and run the test suite (no containers)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

test-all: $(VENV)/.dev  ## the suite plus the slow, full-data checks, the browser tests and the Ray cluster
	$(BIN)/pytest -m "not container"

container-check: $(VENV)/.dev  ## build and run the images for real (needs a container engine)
	$(BIN)/pytest -m container -v -s

bench-smoke: $(VENV)/.dev  ## the benchmarks, briefly, to keep them working
	$(BIN)/python -m benchmarks.serving --smoke
	$(BIN)/python -m benchmarks.training --smoke
	$(BIN)/python -m benchmarks.photos --smoke
	$(BIN)/python -m benchmarks.repository --smoke
	$(BIN)/python -m benchmarks.client_folder --smoke
	$(BIN)/python -m benchmarks.bulk --smoke
	$(BIN)/python -m benchmarks.ray_serve --smoke
	$(BIN)/python -m benchmarks.dashboard --seconds 5 --out $$(mktemp --suffix .png)
	$(BIN)/python -m benchmarks.typeset --count 50
	$(BIN)/python -m benchmarks.novelty --count 50
	$(BIN)/python -m benchmarks.explorer --smoke
	$(BIN)/python -m benchmarks.compare --smoke

# The modules whose mutants `make mutation` runs; MUTATE="$(GUARDS)" runs the API key check and the limits alone.
# training.train and training.export are left out: with them mutated, torch.export fails on the code
# mutmut wraps to switch mutants, and the tests' exported model cannot be made before any mutant runs.
GUARDS := service.http.middleware.xǁRequireApiKeyǁ service.http.middleware.xǁIntakeǁ_limited
MUTATE ?= $(GUARDS) service.http.uploads contract.novelty contract.recipes contract.description \
	service.core.batcher service.core.pictures service.core.repository service.core.served service.core.verified \
	training.model

# The tests run from mutants/, a copy of the checkout, where ../shared is not the data's folder.
MNIST_DIR := $(abspath $(or $(VAE_MNIST_DIR),../shared/data/mnist))

mutation: $(VENV)/.dev  ## mutation testing (mutmut): each module's score and survivors (MUTATE=... narrows it)
	rm -rf mutants
	VAE_MNIST_DIR=$(MNIST_DIR) $(BIN)/python -m harness.mutation $(MUTATE)

mutation-guards: MUTATE = $(GUARDS)
mutation-guards: mutation  ## mutation testing of the API key check and the limits alone, as CI runs it

proto: $(VENV)/.dev  ## regenerate service/grpc/inference_pb2.py(i) from service/grpc/inference.proto
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. service/grpc/inference.proto

clean:  ## remove .venv and the test cache
	rm -rf $(VENV) .pytest_cache mutants
