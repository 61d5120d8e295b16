# Two commands for a fresh machine (see README.md): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: venv install install-test demo test stack-up stack-down clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

install: venv
	$(PIP) install --quiet -e .

install-test: venv
	$(PIP) install --quiet -e '.[test]'

demo: install
	$(VENV)/bin/huiliu demo

test: install-test
	$(PY) -m tests.db_setup   # wal_level=logical, MariaDB binlog ROW: restarts a server only if needed
	$(PY) -m pytest -q -ra --durations=20 --basetemp=$(CURDIR)/.pytest-tmp  # own temp root: other pytest sessions on the machine rotate the shared one

stack-up: install
	$(VENV)/bin/huiliu stack up

stack-down: install
	$(VENV)/bin/huiliu stack down

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
