# Shoal — the two commands a new admin needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-embedded test-scaled install webui test-deps system-deps system-deps-test lint bench clean

run: install system-deps webui
	$(VENV)/bin/shoal serve

test: install system-deps-test webui test-deps
	$(MAKE) test-embedded
	$(MAKE) test-scaled

test-embedded: install webui test-deps
	SHOAL_TEST_BACKEND=embedded $(PY) -m pytest

test-scaled: install webui test-deps
	SHOAL_TEST_BACKEND=scaled $(PY) -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# The browser bundle (npm registry + esbuild), rebuilt only when the lockfile or a source changed.
WEBUI_STAMP := webui/static/dist/.built
WEBUI_SOURCES := webui/package.json webui/package-lock.json webui/build.mjs $(wildcard webui/src/*.js)

webui: $(WEBUI_STAMP)

$(WEBUI_STAMP): $(WEBUI_SOURCES)
	cd webui && npm ci --no-audit --no-fund && npm run build
	@touch $(WEBUI_STAMP)

# The Node WebTorrent client of the P2P tests, from its lockfile. Some dependencies'
# install scripts insist on pnpm: install without scripts, then build the native modules.
WEBTORRENT_DIR := tests/p2p/webtorrent
WEBTORRENT_STAMP := $(WEBTORRENT_DIR)/node_modules/.installed

test-deps: $(WEBTORRENT_STAMP)

$(WEBTORRENT_STAMP): $(WEBTORRENT_DIR)/package.json $(WEBTORRENT_DIR)/package-lock.json
	cd $(WEBTORRENT_DIR) && npm ci --ignore-scripts --no-audit --no-fund \
		&& npm rebuild bufferutil utf-8-validate utp-native
	@touch $(WEBTORRENT_STAMP)

system-deps:
	@deploy/system-deps.sh run

system-deps-test:
	@deploy/system-deps.sh test

lint: install
	$(VENV)/bin/ruff check .

bench: install system-deps-test
	@set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(VENV) .pytest_cache webui/node_modules webui/static/dist $(WEBTORRENT_DIR)/node_modules
