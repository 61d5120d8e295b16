# Two commands for a fresh machine (see README.md): `make demo` and `make test`.
# Installs are locked: uv.lock (every package, test extras included, with hashes) is what runs;
# pyproject.toml keeps the ranges the code supports. `make lock` regenerates the lock after a
# change to pyproject.toml; `make upgrade-check` tries the newest allowed versions in a scratch
# environment and reports what broke.
PYTHON ?= python3
VENV   ?= .venv
TOOLS  ?= .tools
PY     := $(VENV)/bin/python
UV     := $(TOOLS)/bin/uv
# uv: the venv it fills, the Python it uses, and no Python downloads of its own.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: tools install install-test demo test test-long lint audit lock upgrade-check wheel stack-up stack-down clean console-assets

# uv itself, pinned by hash, in its own small venv (the project's venv is synced exactly to the lock).
$(UV): requirements/uv.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	@touch $(UV)

tools: $(UV)

# --frozen: install exactly what uv.lock says; nothing is resolved.
install: $(UV)
	$(UV) sync --frozen --extra stack

install-test: $(UV)
	$(UV) sync --frozen --extra test
	@$(UV) sync --frozen --extra test --check --quiet && echo "environment = uv.lock (installed --frozen: nothing resolved; lxml $$($(PY) -c 'import lxml.etree as e; print(".".join(map(str, e.LXML_VERSION[:3])))'))"

demo: install
	$(VENV)/bin/huiliu demo

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The locked versions against the vendored advisory snapshot (deploy/audit/): fails on a known
# vulnerability with a released fix. Offline, under a second.
audit: install-test
	$(PY) -m deploy.audit.check

test: lint audit
	$(VENV)/bin/huiliu servers prepare   # wal_level=logical, MariaDB binlog ROW: restarts a server only if needed
	# First what restarts the machine's shared servers, alone; then the rest on two workers (a stack
	# each: most of a test's time is waiting on servers, so two share the 2 cores well). Own temp
	# root: other pytest sessions on the machine rotate the shared one.
	mkdir -p $(CURDIR)/.pytest-tmp
	$(PY) -m pytest -q -ra --durations=10 -m "serial and not long" --basetemp=$(CURDIR)/.pytest-tmp/serial; \
	  serial=$$?; \
	  $(PY) -m pytest -q -ra --durations=30 -n 2 --dist loadscope -m "not serial and not long" --basetemp=$(CURDIR)/.pytest-tmp/parallel; \
	  parallel=$$?; \
	  test $$serial -eq 0 -a $$parallel -eq 0

# The longest reliability scenarios (mark `long`), kept out of `make test` for its 45-minute budget.
test-long: install-test
	$(VENV)/bin/huiliu servers prepare
	$(PY) -m pytest -q -ra --durations=20 -m long --basetemp=$(CURDIR)/.pytest-tmp

lock: $(UV)
	$(UV) lock
	$(UV) pip compile requirements/uv.in --generate-hashes --universal --no-header -q -o requirements/uv.txt
	$(UV) pip compile deploy/flink/requirements.in --generate-hashes --python-version 3.11 --no-header -q -o deploy/flink/requirements.lock
	$(UV) pip compile deploy/flink/jars.in --no-deps --generate-hashes --python-version 3.11 --no-header -q -o deploy/flink/jars.lock

# The web console's front-end libraries are committed under api/console/static/vendor/ (no npm on a
# fresh machine); this re-fetches them with `npm pack` at the pinned versions and checks their sha512.
console-assets: install
	$(PY) -m deploy.console_assets

upgrade-check: $(UV)
	$(PYTHON) deploy/upgrade_check.py --uv $(UV) -- $(PYTEST_ARGS)

wheel: $(UV)
	$(UV) build --wheel --out-dir dist

stack-up: install
	$(VENV)/bin/huiliu stack up

stack-down: install
	$(VENV)/bin/huiliu stack down

clean:
	rm -rf $(VENV) $(TOOLS) *.egg-info .pytest_cache dist build
