# The two commands a newcomer needs:  `make demo`  and  `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test test-all bench

install:  ## install weightspace (editable) with its test extras; torch is pinned to the CPU wheel
	$(PIP) install --quiet -e ".[all]"

demo: install  ## the main job on the embedded default (digits-rotate)
	weightspace demo

test: install  ## the test suite CI runs (skips only tests marked slow)
	$(PYTHON) -m pytest

test-all: install  ## everything, including tests marked slow
	$(PYTHON) -m pytest -m ""
