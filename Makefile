# The two commands of the quick start, and the checks CI runs. Needs Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-all container-check bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving only: no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Everything: training (torch==2.13.0, CPU) and the test tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve  ## set up, then serve models/mnist on http://127.0.0.1:8000
	$(BIN)/vae-serve

test: $(VENV)/.dev  ## set up, then lint and run the test suite (no containers)
	$(BIN)/ruff check .
	$(BIN)/pytest

test-all: $(VENV)/.dev  ## the suite plus the slow, full-data checks
	$(BIN)/pytest -m "not container"

container-check: $(VENV)/.dev  ## build and run the images for real (needs a container engine)
	$(BIN)/pytest -m container -v -s

bench-smoke: $(VENV)/.dev  ## the benchmarks, briefly, to keep them working
	$(BIN)/python -m benchmarks.serving --smoke
	$(BIN)/python -m benchmarks.training --smoke
	$(BIN)/python -m benchmarks.photos --smoke

clean:
	rm -rf $(VENV) .pytest_cache
