# Two entry points for a fresh machine with Python: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
APP    ?= django

.PHONY: demo test matrix tox lint typecheck unit site docs generate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[hiredis,django,flask,test,dev,docs]'
	touch $(STAMP)

demo: $(STAMP)  ## run an example app (APP=django|flask) on an embedded Redis unless CACHEKIT_REDIS_URL is set
	$(PY) -m example_$(APP)

test: lint typecheck site unit  ## everything CI checks

matrix:  ## the suite on Python 3.10 + lowest allowed deps and on 3.13 + newest, no hiredis
	$(PYTHON) scripts/matrix.py $(MATRIX_ENVS) -- $(PYTEST_ARGS)

# tox looks for python3.10 ... on PATH, where pyenv's shims answer only for the versions
# pyenv has selected: select every installed one for this run. TOX_ARGS="-e py313-newest".
tox: $(STAMP)  ## tox.ini's environments, with every Python that pyenv has installed
	PYENV_VERSION="$$(pyenv versions --bare 2>/dev/null | paste -sd: -)" $(VENV)/bin/tox $(TOX_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check cachekit_web tests example_django example_flask benchmarks scripts setup.py
	$(PY) scripts/generate_sync.py --check

generate: $(STAMP)  ## rebuild cachekit_web/core/_sync from the async sources in core/_async
	$(PY) scripts/generate_sync.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Not --quiet: it drops the warnings that --strict counts, and a broken link would pass.
site: $(STAMP)  ## build the documentation site into site/ (strict: a broken link or anchor fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs: $(STAMP)  ## regenerate docs/errors.md and the README's settings table
	$(VENV)/bin/cachekit-web explain --markdown > docs/errors.md
	$(PY) -m cachekit_web.cli readme README.md

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .matrix .pytest_cache .mypy_cache .ruff_cache site
