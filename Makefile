# The interface: every target CI or a person runs. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installed first: the pinned pip resolves the rest much faster than the one a new venv has.
PIP_PIN := $(shell grep -m1 '^pip==' requirements-dev.txt)
# checkov lives in its own venv: its dependency pins fight the project's boto3/botocore pins.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
DEBIAN_PACKAGES := victoria-metrics prometheus prometheus-alertmanager prometheus-pushgateway openssl
RELIABILITY := build/reliability
# The suite in two processes (pytest-xdist), each test file whole in one of them (pyproject.toml).
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS)
export PYTHONPATH := $(CURDIR)/function:$(CURDIR)

.PHONY: setup system-packages demo demo-alert demo-kafka test lint terraform-fmt checkov pytest unit \
	integration reliability bench evaluate package package-lambda clean

setup: $(STAMP) $(CHECKOV_STAMP) system-packages

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_PIN)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PIP_PIN)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

system-packages:
	@infra/scripts/install-system-packages.sh $(DEBIAN_PACKAGES)

demo: setup
	$(BIN)/python -m infra.stack.demo

demo-alert: setup
	$(BIN)/python -m infra.stack.demo_alert

demo-kafka: setup
	$(BIN)/python -m infra.stack.demo_kafka

test: setup lint pytest

lint: $(STAMP) terraform-fmt
	$(BIN)/ruff check function tests infra bench
	$(BIN)/ruff format --check function tests infra bench
	$(BIN)/mypy function infra bench
	$(BIN)/lint-imports

terraform-fmt:
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive terraform

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform -d terraform

pytest: setup
	$(BIN)/python -m pytest -q $(PARALLEL)

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q $(PARALLEL) tests/integration tests/e2e

# The reliability suites with the long fuzz profile, then one summary table (README, Reliability).
# pytest's own status is not the verdict: the table script fails if any test failed or any
# figure that must be zero is not.
reliability: setup
	rm -rf $(RELIABILITY) && mkdir -p $(RELIABILITY)
	RELIABILITY_REPORT_DIR=$(CURDIR)/$(RELIABILITY) HYPOTHESIS_PROFILE=reliability \
		$(BIN)/python -m pytest -q -p no:cacheprovider --junitxml=$(RELIABILITY)/junit.xml \
		tests/integration/test_fault_matrix.py tests/unit/test_fuzz_*.py \
		tests/integration/test_fuzz_*.py tests/e2e/test_secrets.py tests/e2e/test_load.py \
		|| true
	$(BIN)/python infra/scripts/reliability.py $(RELIABILITY)

bench: setup
	$(BIN)/python bench/bench_core.py
	$(BIN)/python bench/bench_e2e.py
	$(BIN)/python bench/bench_user.py
	$(BIN)/python bench/bench_sweep.py

# Each policy against the load model alone, no servers: the tables the README's recommended
# defaults cite, and build/evaluate.png. Under a minute; make test runs the --quick grid.
evaluate: $(STAMP)
	$(BIN)/python -m infra.evaluate

package:
	$(PYTHON) infra/scripts/package.py build/function.zip

# Vendors the runtime dependencies as manylinux2014 x86_64 wheels from PyPI (needs the venv's pip).
package-lambda: $(STAMP)
	$(BIN)/python infra/scripts/package.py --kind lambda build/lambda.zip

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
