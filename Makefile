# Two commands for a newcomer: `make demo` (then `make stop`) and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo stop test lint unit install desk seed bench lock clean compose-check

# requirements.txt: what the product runs with (the Docker image installs only that);
# requirements-dev.txt: that plus the test, lint and demo tools.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Debian packages (RT 5, fonts), Python environment with Airflow and our package
	bash scripts/install-system.sh

desk: install ## provision and start the embedded Request Tracker on 127.0.0.1:8480
	$(BIN)/python -m incident_ops.embedded_desk provision
	$(BIN)/python -m incident_ops.embedded_desk start

seed: desk ## load the sample tickets (deterministic)
	$(BIN)/python -m incident_ops.embedded_desk seed --count 2000

demo: install ## desk with sample data, mail catcher, Airflow with the DAGs
	bash scripts/demo.sh start

stop: ## stop everything `make demo` started
	bash scripts/demo.sh stop

lint: $(STAMP)
	$(BIN)/ruff check include dags plugins tests bench
	$(BIN)/mypy include/incident_ops dags plugins
	$(BIN)/python -m incident_ops check-config

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

test: install lint ## everything CI runs: lint, unit, integration (real RT, SMTP, SMS), DAGs
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --timeout=900 -n 3 --dist loadfile --durations=25

compose-check: install ## docker-compose.yml, Dockerfiles, .env.example checked without Docker
	$(BIN)/python -m pytest tests/deploy/test_compose.py -q -p no:cacheprovider

bench: desk
	$(BIN)/python bench/bench_desk.py

lock: ## re-pin the installed set: the names requirements-dev.txt pins stay there, the rest is runtime
	$(BIN)/pip freeze --exclude-editable | grep -v '^incident-ops' > requirements.lock.tmp
	grep -E '^[A-Za-z0-9_.-]+==' requirements-dev.txt | sed 's/==.*/==/; s/^/^/' > dev-names.tmp
	{ grep '^#' requirements.txt; grep -ivf dev-names.tmp requirements.lock.tmp; } > requirements.txt.tmp
	{ grep -E '^(#|-r )' requirements-dev.txt; grep -if dev-names.tmp requirements.lock.tmp; } \
		> requirements-dev.txt.tmp
	mv requirements.txt.tmp requirements.txt && mv requirements-dev.txt.tmp requirements-dev.txt
	rm -f requirements.lock.tmp dev-names.tmp

clean: stop
	rm -rf .desk .run $(VENV)
