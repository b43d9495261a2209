# Install into the active Python environment (make a venv first if you want one).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: install test lint bench tiny-models demo clean

install:
	$(PIP) install -e '.[dev]'

test:
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -m "not gpu" -n 2 $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check llasa_cli tests scripts
	lint-imports

bench:
	HF_HUB_OFFLINE=1 $(PYTHON) scripts/bench.py --size tiny

tiny-models:
	$(PYTHON) scripts/make_tiny_models.py tiny-models

demo: tiny-models
	HF_HUB_OFFLINE=1 llasa synth sample_texts/postcard.txt -o demo-out \
		--model tiny-models/llasa --codec tiny-models/xcodec2 --no-verify

clean:
	rm -rf build dist *.egg-info .pytest_cache tiny-models demo-out
