# The two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test lint format messages worker beat serve

$(BIN)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	touch $@

install: $(BIN)/.installed

## Install, migrate, load demo data, create the admin login, print the URLs, serve.
## Links in the demo's e-mails point to where it serves (SITE_URL set in the environment wins).
demo: export SITE_URL ?= http://$(HOST):$(PORT)
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_data --if-empty
	$(BIN)/python manage.py demo_segments
	$(BIN)/python manage.py demo_rewards
	$(BIN)/python manage.py demo_campaigns
	$(BIN)/python manage.py demo_admin --url http://$(HOST):$(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## Install and run the whole test suite (PostgreSQL/Redis/worker tests run when
## DATABASE_URL and REDIS_URL are set; see README).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install
	$(BIN)/python manage.py makemessages -l nl --no-obsolete --ignore=.venv
	$(BIN)/python manage.py compilemessages --ignore=.venv

## Production layout: gunicorn + worker + beat against DATABASE_URL and REDIS_URL.
serve: install
	$(BIN)/gunicorn loyalty.wsgi --bind $(HOST):$(PORT) --workers 3
worker: install
	$(BIN)/celery -A loyalty worker --loglevel INFO
beat: install
	$(BIN)/celery -A loyalty beat --loglevel INFO
