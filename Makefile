# The two commands of the README: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch, installed before the project so that no dependency can resolve a CUDA wheel.
# (On machines without a local wheel, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.)
TORCH_CPU ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_CPU)"
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "import torch; assert not torch.version.cuda, 'a CUDA torch got into the dev install'"
	touch $(STAMP)

install: $(STAMP)

# The whole suite. pytest's exit code 5 ("no tests collected") is a failure, not a pass.
test: install
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

test-fast: install
	$(PY) -m pytest -m "not parity and not slow" $(PYTEST_ARGS)

# Until the job service exists, the demo measures the model on this machine (a real forward pass, no verdict).
demo: install
	$(PY) bench/bench_model.py --quick

bench: install
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
