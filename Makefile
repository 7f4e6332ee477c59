# Terapi: `make dev` serves the API locally on an embedded AWS; `make test` runs every check.
# Everything a fresh clone needs is installed here, into .venv (the application and its tests)
# and .venv-sam (aws-sam-cli, which pins its own boto3 and pydantic).

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
PORT ?= 3003
export PYTHONDONTWRITEBYTECODE := 1
export SAM_CLI_TELEMETRY := 0

.PHONY: dev test lint unit integration e2e template bench clean

$(VENV)/.installed: requirements-dev.txt layers/terapi/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

dev: $(VENV)/.installed
	$(PY) -m devserver --port $(PORT)

test: lint unit integration e2e template

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# pytest exits 5 when a selection collects nothing; that is a failure of the suite layout, so it
# is reported as such instead of passing silently.
unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -q -p no:cacheprovider || { rc=$$?; [ $$rc -eq 5 ] && echo "no unit tests collected"; exit $$rc; }

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration -q -p no:cacheprovider -n 2 || { rc=$$?; [ $$rc -eq 5 ] && echo "no integration tests collected"; exit $$rc; }

e2e: $(VENV)/.installed
	$(PY) -m pytest tests/e2e -q -p no:cacheprovider || { rc=$$?; [ $$rc -eq 5 ] && echo "no e2e tests collected"; exit $$rc; }

template: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(SAM_VENV)/bin/sam build --template template.yaml --build-dir .aws-sam/build --no-cached

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam
