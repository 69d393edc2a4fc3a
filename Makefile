# Two commands for a fresh machine:
#   make run    set up .venv, then train and evaluate the default experiment (GRUCell)
#               on the real KTH if prepared in data/kth, else on the synthetic twin
#   make test   set up .venv, then run the test suite (notebook included, small profile)
#   make notebook     open Assignment3.ipynb in Jupyter (from .venv)
#   make tensorboard  the training curves of tboard_logs/
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EXP    ?= GRUCell

.PHONY: run test lint bench suite compare tensorboard notebook clean-venv

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m src.train --config configs/$(EXP).yaml
	$(PY) -m src.evaluate --checkpoint models/$(EXP)/best.pth

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) bench/rnn.py

suite: $(VENV)/.installed
	$(PY) -m src.suite

compare: $(VENV)/.installed
	$(PY) -m src.compare

tensorboard: $(VENV)/.installed
	$(VENV)/bin/tensorboard --logdir tboard_logs

notebook: $(VENV)/.installed
	$(VENV)/bin/jupyter notebook Assignment3.ipynb

clean-venv:
	rm -rf $(VENV)
