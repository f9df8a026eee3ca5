# Two commands matter: `make run` (the main job) and `make test` (the whole suite).
# Both create what they need: a virtualenv in .venv and, as root, the system packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint sysdeps bench-analysis clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"' || \
		{ echo "Install Python 3.11 or newer (e.g. apt-get install -y python3 python3-venv)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

sysdeps:
	@bash scripts/sysdeps.sh

run: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m numpywren2.client.demo

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) sysdeps lint
	# 4 worker processes: the tests mostly wait on executors and servers (one process used under half a core)
	$(PY) -m pytest -n 4

bench-analysis: $(STAMP)
	$(PY) bench/analysis.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
