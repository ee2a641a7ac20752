# kubetfx: the two quick-start commands are `make run` and `make test`.
# Each sets up what it needs: a virtual environment installed from the hash-pinned lock,
# and (for tests) a MariaDB server from Debian's packages.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed
PIPELINE ?= pipelines/training/pipeline.yaml

.PHONY: run test venv serving-env system-deps lint format compile check-compiled lock clean help bench bench-install bench-tfx audit image

help:
	@echo "make run     run the reference pipeline locally on the penguins data"
	@echo "make test    run the test suite"
	@echo "make lint    ruff and mypy"
	@echo "make compile regenerate component.yaml / pipeline.yaml files"
	@echo "make lock    re-resolve the locked dependency sets"
	@echo "make serving-env  the serving check's model server environment (.venv-serving)"

# Bytecode for kubetfx's own modules too (the editable install compiles none), as a wheel
# install has it: else every task's process compiles them again wherever writing .pyc
# files is off (PYTHONDONTWRITEBYTECODE). An edited module's stale .pyc is not used.
$(STAMP): $(LOCK) requirements/bootstrap.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt
	$(BIN)/uv pip sync --quiet --compile-bytecode -p $(BIN)/python --require-hashes $(LOCK)
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src components pipelines
	touch $(STAMP)

venv: $(STAMP)

# The Pusher's serving check runs the model in KServe's Python model server, which cannot
# share kubetfx's lock (its pandas and prometheus-client pins conflict): its own hash-pinned
# lock, requirements/serving.txt, in .venv-serving (docs/serving.md). Seconds from uv's cache.
SERVING_VENV  := .venv-serving
SERVING_LOCK  := requirements/serving.txt
SERVING_STAMP := $(SERVING_VENV)/.installed

$(SERVING_STAMP): $(SERVING_LOCK) | $(STAMP)
	$(BIN)/uv venv --quiet --allow-existing -p $(PYTHON) $(SERVING_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode -p $(SERVING_VENV)/bin/python --require-hashes $(SERVING_LOCK)
	touch $(SERVING_STAMP)

serving-env: $(SERVING_STAMP)

# MariaDB is a real server for the MySQL metadata-store tests (tests start their own);
# Graphviz draws lineage graphs; Prometheus, its Pushgateway and promtool for the monitoring
# tests (started by the tests on loopback, never as services).
system-deps:
	@{ { command -v mariadbd || test -x /usr/sbin/mariadbd; } && command -v dot \
	   && test -x /usr/bin/prometheus && test -x /usr/bin/prometheus-pushgateway && test -x /usr/bin/promtool; } >/dev/null 2>&1 || { \
	  echo "installing mariadb-server, graphviz, prometheus and prometheus-pushgateway from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    mariadb-server graphviz prometheus prometheus-pushgateway >/dev/null; }

run: venv serving-env
	$(BIN)/kubetfx run $(PIPELINE)

test: venv serving-env system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff, then mypy on src/kubetfx and components/ (scripts/typecheck.sh says how).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPY=$(BIN)/mypy scripts/typecheck.sh

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compile: venv
	$(BIN)/kubetfx compile

check-compiled: venv
	$(BIN)/kubetfx compile --check

# Re-resolve the locked sets (authoring, runtime, runtime-gpu, dev) with hashes. runtime-gpu
# is the GPU image's lock: the runtime set plus TensorFlow's CUDA wheels, constrained to
# runtime.txt (resolved just before it), so both images run the very same versions.
# serving.txt is the serving check's model server (requirements/serving.in), its own set.
lock:
	uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --require-hashes -r requirements/bootstrap.txt
	for set in "authoring:" "runtime:--extra runtime" \
	    "runtime-gpu:--extra runtime --extra gpu -c requirements/runtime.txt" \
	    "dev:--extra runtime --extra dev"; do \
	  name=$${set%%:*}; extras=$${set#*:}; \
	  uv pip compile -q pyproject.toml $$extras --generate-hashes --no-strip-extras --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
	    -o requirements/$$name.txt || exit 1; \
	done

# The component image: build it from Containerfile and run components in it (docs/image.md).
# Needs root or sudo and takes minutes (16 min cold, under 2 min with its cache), so it is
# not part of `make test`; CI builds it when KUBETFX_IMAGE_TESTS=1.
image: venv
	scripts/image.sh

# Known vulnerabilities in the locks (pip-audit). Fails, saying so, when nothing could be
# checked (no vulnerability database reachable): an unchecked lock is not a pass.
audit: venv
	$(BIN)/python scripts/lockaudit.py

clean:
	rm -rf .kubetfx .pytest_cache .ruff_cache build/typecheck build/mypy-cache

# Cold install time and size of each profile (no pip cache), into throw-away venvs.
bench-install:
	rm -rf /tmp/kubetfx-bench && mkdir -p /tmp/kubetfx-bench
	$(PYTHON) -m pip wheel -q --no-deps -w /tmp/kubetfx-bench/dist .
	for profile in authoring runtime; do \
	  $(PYTHON) -m venv /tmp/kubetfx-bench/$$profile; \
	  start=$$(date +%s.%N); \
	  /tmp/kubetfx-bench/$$profile/bin/pip install -q --no-cache-dir --disable-pip-version-check --require-hashes -r requirements/$$profile.txt || exit 1; \
	  /tmp/kubetfx-bench/$$profile/bin/pip install -q --no-cache-dir --no-deps /tmp/kubetfx-bench/dist/kubetfx-*.whl || exit 1; \
	  end=$$(date +%s.%N); \
	  echo "$$profile: $$($(PYTHON) -c "print(round($$end - $$start, 1))") s, $$(du -sm /tmp/kubetfx-bench/$$profile | cut -f1) MB, $$(/tmp/kubetfx-bench/$$profile/bin/pip list 2>/dev/null | tail -n +3 | wc -l) packages"; \
	done

# Every benchmark, each side by side with its baseline, then one table: figure, baseline,
# ratio, target, pass / falls short (docs/benchmarks.md). Full output in bench.log.
# BENCH_ARGS=--quick for a smoke run. The TFX comparison's environment is built first.
bench: venv
	scripts/tfx-bench-env.sh
	$(BIN)/python -m benchmarks.all $(BENCH_ARGS)

# The TFX 1.16 comparison alone (25-40 min): a benchmark-only TFX environment, never ours;
# on the 15,000-row data, then on the penguins as shipped.
bench-tfx: venv
	scripts/tfx-bench-env.sh
	$(BIN)/python -m benchmarks.tfx_cold --repeat 3
	$(BIN)/python -m benchmarks.tfx_cold --rows 0 --repeat 3
