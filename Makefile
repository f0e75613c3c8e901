# porapp: `make demo` runs the service, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck install tools node-tools check-migrations bench asan mutation clean lock

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# The Merkle builder's optional C accelerator (gcc + libssl-dev); without it, pure Python.
MERKLE_NATIVE := audits/core/merkle/_mstnative$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
$(MERKLE_NATIVE): audits/core/merkle/_mstnative.c $(STAMP)
	-$(PY) -m audits.core.merkle.build_native

install: $(STAMP) $(MERKLE_NATIVE)

tools:
	scripts/install-tools.sh node browser

node-tools:
	scripts/install-tools.sh node

demo: install node-tools
	DEBUG=1 $(PY) manage.py rundemo

test: install tools
	$(PY) -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy porapp audits

check-migrations: install
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

bench: install
	# merkletools is only the benchmark's plain-tree peer; --no-deps skips pysha3, which does
	# not build on Python 3.11 (and which the peer does not need on 3.6+).
	$(VENV)/bin/pip install --quiet --no-deps merkletools==1.0.3
	$(PY) bench/merkle_bench.py
	$(PY) bench/statements_bench.py
	$(PY) bench/market_hours_bench.py
	$(PY) bench/reconciliation_bench.py
	$(PY) bench/webhook_latency_bench.py

# The Merkle C accelerator (tree builder and snapshot splitter) built with AddressSanitizer +
# UBSan in var/asan; tests/merkle, the splitter's tests (tests/liabilities/test_split*.py) and
# bounded fuzz runs against it (MERKLE_FUZZ_EXAMPLES, default 1500; LIABILITY_FUZZ_EXAMPLES,
# default 1000).
asan: install
	scripts/merkle-asan.sh
# Mutation testing of the framework-free core (mutmut 3, configured in pyproject.toml): minutes
# of CPU, so not on every push. A fresh run each time (results cached by mutmut would miss new
# tests), then per-module scores; fails if a module scores below MUTATION_FAIL_UNDER percent.
MUTATION_JOBS ?= 2
MUTATION_FAIL_UNDER ?= 85
mutation: install
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(PY) scripts/mutation_report.py --fail-under $(MUTATION_FAIL_UNDER) --survivors

lock: install
	{ echo "# Exact pins (pip freeze of the resolved set). Regenerate with: make lock"; \
	  $(VENV)/bin/pip freeze --exclude-editable; } > requirements.txt

clean:
	rm -rf $(VENV) var node_modules
