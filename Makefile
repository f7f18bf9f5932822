# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# pip-tools lives in a venv of its own so the project's stays exactly what the lock says.
LOCK_VENV ?= .venv-lock
LOCK_ARGS ?=

.PHONY: demo test test-fast run bench lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every package, build backend included, at the locked version and hash; then the project itself.
# `pip check` catches a dependency added to pyproject.toml without `make lock`.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	rm -rf *.egg-info  # a stale one in the tree hides new entry points (adapters) from importlib.metadata
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
	  echo "$(LOCK) does not cover pyproject.toml: run 'make lock'"; exit 1; }
	touch $@

# Re-resolve the lock from pyproject.toml (dependencies, the test extra, the build backend). Pins
# already in the lock are kept; LOCK_ARGS="--upgrade-package NAME" or LOCK_ARGS=--upgrade moves them.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/pip install --quiet pip-tools; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --extra test \
	  --build-deps-for editable --allow-unsafe --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $(LOCK) pyproject.toml

demo: $(STAMP)
	$(BIN)/collector demo

run: $(STAMP)
	$(BIN)/collector run

# pytest-xdist workers, each with its own PostgreSQL, Chromium and temp dirs (ports are all picked free).
# One per core: the CPU-bound fuzzing fills both, and the subprocess and server tests mostly wait; more
# workers were no faster on a loaded 2-core machine. worksteal evens out the few long scenario tests.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: $(STAMP)
	$(PYTEST)

# Everything but PostgreSQL, Chromium and subprocesses: the loop to run while editing.
test-fast: $(STAMP)
	$(PYTEST) -m 'not slow'

# BENCH=fleet runs the fleet capacity benchmark instead (BENCH="fleet --help" for its options).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(LOCK_VENV) build *.egg-info .pytest_cache .ruff_cache
