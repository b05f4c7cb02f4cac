# The verbs people and CI use. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setuptools prints a notice about editable installs on every `pip install -e`; the install is
# as intended, so the first `make demo` shows that notice no more than any other noise.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"
# Mixpeek's official SDKs, the second reading of the API the conformance tests hold us to. They
# share the package name `mixpeek`, so each lives in a folder of its own under .venv/sdks/.
SDK_APPS := 1.3.783
SDK_PLUGINS := 0.81.1

.PHONY: setup check test lint typecheck pytest pulumi node browser sdks docs dist demo emulator contracts contract-test bench reliability clean

setup: $(STAMP) browser

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e '.[dev]'
	# The native provider's generated Python SDK (pulumi_mixpeek), as its users install it.
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e ./sdk/python
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sdks/mixpeek-$(SDK_APPS) mixpeek==$(SDK_APPS)
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sdks/mixpeek-$(SDK_PLUGINS) mixpeek==$(SDK_PLUGINS)
	touch $(STAMP)

# Debian's Chromium, for the headless browser test (tests/emulator/test_browser.py): nothing
# to do where `chromium` is on PATH; installed with apt-get where this runs as root on Debian
# (a failed install fails the build); elsewhere one sentence says the test will be skipped.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the headless browser test."; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "Chromium is not installed and this is not root on Debian, so the headless browser test will be skipped: install the chromium package to run it."; \
	fi

# The real Pulumi CLI: found on PATH or in ~/.cache/mixpeek-pulumi, else Pulumi's installer,
# else built from the pinned Go modules in tools/ (CLI, YAML language host, the Python shims).
pulumi:
	$(PYTHON) scripts/pulumi_cli.py

# The native provider's schema (from the typed models) and its generated Python and Node.js
# SDKs under sdk/, through tools/pulumi-gen-sdk (Pulumi's SDK generators, built with Go).
sdks: $(STAMP)
	$(BIN)/python -m scripts.gen_sdk
	$(BIN)/python -m scripts.gen_docs

# docs/_index.md, docs/installation-configuration.md and docs/resources/*.md from the schema,
# as the Pulumi Registry renders a package (make test fails when they are stale).
docs: $(STAMP)
	$(BIN)/python -m scripts.gen_docs

# Every release artifact into dist/: the wheels and sdist, the SDK packages (Python wheel, npm
# tarball) and the plugin's release archive for this platform (PyInstaller, cached by source
# digest beside the CLI; see docs/release.md for the other platforms).
dist: $(STAMP) node
	$(BIN)/python -m scripts.dist

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# @pulumi/pulumi and TypeScript from the npm registry into .venv/node (tools/nodejs's lock), for
# the native provider's TypeScript example; says why not where Node.js is missing.
node: $(STAMP)
	$(BIN)/python -m scripts.node_toolchain

# Tests wait mostly on processes (the CLI, the engine, provider hosts), so they run one worker
# more than there are cores (the cores sit a third idle with one each), at most 4; each test has
# its own emulator, port and state folders.
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -ge 3 ] && echo 4 || echo $$((n + 1)))
pytest: $(STAMP) pulumi node browser
	$(BIN)/pytest --numprocesses=$(WORKERS)

# lint and typecheck run beside pytest, whose tests mostly wait on processes: the two take a
# core for half a minute that would otherwise come before the first test.
test:
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

# The loop to run while working (4 workers on 2 cores: these tests mostly wait on loopback
# servers and bounds): lint, types, and the in-process tiers (unit, kinds, the kind
# checklist) with no Pulumi CLI, npm, Go or PyInstaller; the tests that wait out real bounds
# (marked slow) and every tier that starts a provider host, the plugin or the CLI are make test's.
check: lint typecheck
	$(BIN)/pytest --numprocesses=4 -m "not slow" tests/unit tests/kinds tests/test_kind_checklist.py

# The two API contracts the emulator follows (emulator/mixpeek_emulator/contracts/): rebuild the
# apps one from the official SDK. The plugin one is Mixpeek's published OpenAPI document, copied
# with `python -m scripts.contracts plugins --from <openapi.json> --commit <sha>`.
contracts: $(STAMP)
	$(BIN)/python -m scripts.contracts apps

# schemathesis against the emulator from both contracts, stateless and stateful (part of pytest).
contract-test: $(STAMP)
	$(BIN)/pytest tests/contract --numprocesses=auto --maxprocesses=4

# mixpeek-emulator: the local Mixpeek API (FastAPI + uvicorn) on 127.0.0.1.
emulator: $(STAMP)
	$(BIN)/mixpeek-emulator --host 127.0.0.1 --port 8787 --api-key demo-key

# `make demo BUNDLE=path/to/build APP_ID=app_my_site VERIFY_TEXT='<h1>Welcome'` deploys your own
# build folder or .zip (relative to this folder) instead of the example site, and checks that
# its live production site holds that text.
# Handed over in the environment, so no value needs shell quoting.
demo: export MIXPEEK_DEMO_BUNDLE = $(BUNDLE)
demo: export MIXPEEK_DEMO_APP_ID = $(APP_ID)
demo: export MIXPEEK_DEMO_VERIFY_TEXT = $(VERIFY_TEXT)
demo: $(STAMP) pulumi
	$(BIN)/python -m scripts.demo

# Rewrites docs/reliability.md from a run of the fault matrix, the hostile inputs and the runs
# after a create cut short (in the deploy layer, tests/kinds).
reliability: $(STAMP)
	MIXPEEK_WRITE_DOCS=1 $(BIN)/pytest tests/reliability tests/kinds/test_cross_run.py -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info .pulumi Pulumi.demo.yaml
