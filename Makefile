# Two commands for a fresh machine:
#   make run    set up .venv, then train and evaluate the default experiment (GRUCell)
#               on the real KTH if prepared in data/kth, else on the synthetic twin
#   make test   set up .venv, then run the test suite: both tiers (notebook included, small profile)
#   make test-fast    the in-process tier alone, pytest -m "not slow": minutes, for a change of one function
#                     (the slow tier: subprocesses, the notebook, torchrun, end to end; see pytest.ini)
#   make notebook     open Assignment3.ipynb in Jupyter (from .venv)
#   make tensorboard  the training curves of tboard_logs/
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EXP    ?= GRUCell

.PHONY: run test test-fast lint bench suite record compare tensorboard notebook clean-venv

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

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) bench/rnn.py

suite: $(VENV)/.installed
	$(PY) -m src.suite

# The results of record, resumable, CPU hours, in float32 whichever CPU (as the recipe
# study): the 2-D recurrent experiments and their scheduler variants get seeds until every paired comparison
# among them is within +-2.5 points (at most 10), OwnConvLSTM and R2Plus1D 5; then GRUCell and R2Plus1D, 3 seeds,
# under KTH's official split, in their own folder. RECORD_DIR, SCHULDT_DIR and RECORD_SET make them elsewhere,
# with more keys.
RECORD_DIR ?= models
SCHULDT_DIR ?= models/schuldt2004
RECORD_SET ?=
record: $(VENV)/.installed
	$(PY) -m src.suite --models-dir $(RECORD_DIR) --set train.amp=false $(RECORD_SET) \
		--only LSTMCell GRUCell OwnLSTM OwnGRU LSTMCell_NoScheduler GRUCell_NoScheduler \
		--seeds 5 --variant-seeds 5 --until-half-width 2.5 --max-seeds 10
	$(PY) -m src.suite --models-dir $(RECORD_DIR) --set train.amp=false $(RECORD_SET) \
		--only OwnConvLSTM R2Plus1D --seeds 5
	$(PY) -m src.suite --models-dir $(SCHULDT_DIR) --set train.amp=false data.split=schuldt2004 \
		$(RECORD_SET) --only GRUCell R2Plus1D --seeds 3

compare: $(VENV)/.installed
	$(PY) -m src.compare

tensorboard: $(VENV)/.installed
	$(VENV)/bin/tensorboard --logdir tboard_logs

notebook: $(VENV)/.installed
	$(VENV)/bin/jupyter notebook Assignment3.ipynb

clean-venv:
	rm -rf $(VENV)
