# Two commands: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_MEMBERS ?= 5000
# The demo runs in development mode unless the caller says otherwise.
DEV := DEBUG=$${DEBUG:-1}

.PHONY: demo test install migrate seed serve lint messages vendor clean worker beat bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) messages vendor

# Front-end files from npm (package.json), copied into static/vendor/: Chart.js for the
# admin dashboard (its figures are also tables, so it reads without them) and axe-core for
# the accessibility checks of the browser tests. Skipped with a note when npm is missing.
VENDOR_FILES := static/vendor/axe-core/axe.min.js static/vendor/chart.js/chart.umd.js
vendor: $(VENDOR_FILES)

$(VENDOR_FILES) &: package.json
	@if command -v npm >/dev/null; then \
	  (npm install --no-audit --no-fund --silent && \
	   mkdir -p static/vendor/axe-core static/vendor/chart.js && \
	   cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE static/vendor/axe-core/ && \
	   cp node_modules/chart.js/dist/chart.umd.js node_modules/chart.js/LICENSE.md static/vendor/chart.js/ && \
	   touch $(VENDOR_FILES)) || \
	  echo "npm install failed: the dashboard shows tables without charts; browser accessibility checks are skipped"; \
	else echo "npm not found: the dashboard shows tables without charts; browser accessibility checks are skipped"; fi

messages: $(STAMP)
	@if ls locale/*/LC_MESSAGES/*.po >/dev/null 2>&1; then $(DEV) $(BIN)/python manage.py compilemessages --ignore=.venv -v 0; fi

migrate: install
	$(DEV) $(BIN)/python manage.py migrate --noinput -v 0

seed: migrate
	$(DEV) $(BIN)/python manage.py seed_demo --members $(DEMO_MEMBERS) --if-empty
	$(DEV) $(BIN)/python manage.py seed_dashboard_history --if-empty
	$(DEV) $(BIN)/python manage.py ensure_demo_admin

serve:
	$(DEV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

demo: seed serve

# The SQLite run is split over the machine's cores (pytest-xdist, one in-memory database
# per worker); .ci/run's PostgreSQL run over two (a test database and a Redis database per
# worker, cdp/test_settings.py).
test: install
	$(BIN)/python -m pytest -q -n $${TEST_WORKERS:-auto}

# ruff, then the arrows between apps (import-linter contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# One worker for every queue of cdp/queues.py (CELERY_TASK_QUEUES); WORKER_QUEUES=imports,segments
# makes one for some (docs/operations.md, "Queues and workers").
worker: install
	$(BIN)/celery -A cdp worker -l info --concurrency $${WORKER_CONCURRENCY:-4} $${WORKER_QUEUES:+-Q $$WORKER_QUEUES}

beat: install
	$(BIN)/celery -A cdp beat -l info

# Every benchmark, one after the other, on PostgreSQL (bench/README.md); figures land in
# bench/results/latest.json. BENCH="--only api,consent" runs some.
bench: install
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache node_modules static/vendor artifacts
