# pwm — every entry point. `make help` lists the targets; each installs what it needs first.
PY      := .venv/bin/python
PWM     := .venv/bin/pwm
STAMP   := .venv/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo reproduce evolve test test-slow lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3.11 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## make .venv and install pwm with its dev tools (once)

demo: $(STAMP)  ## the main job on built-in defaults (see README; ARGS="--quick": tiny, minutes)
	$(PY) experiments/demo.py $(ARGS)

reproduce: $(STAMP)  ## the full study, CPU hours (experiments/reproduce.py; ARGS="--part main")
	$(PY) experiments/reproduce.py $(ARGS)

evolve: $(STAMP)  ## evolutionary analysis of Polis -> experiments/results/evolution/ (ARGS="--quick")
	$(PY) experiments/evolution.py $(ARGS)

lint: $(STAMP)  ## ruff check + ruff format --check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: $(STAMP)  ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

test: lint  ## lint, then the fast tests
	.venv/bin/pytest -q

test-slow: $(STAMP)  ## the slow tests only
	.venv/bin/pytest -q -m slow

bench: $(STAMP)  ## benchmarks -> experiments/results/BENCH.md
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) experiments/benchmarks/run_all.py

clean:  ## remove generated data and runs (never committed results)
	rm -rf data runs wandb
