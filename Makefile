# The README's commands. Each installs what it needs into .venv/ on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_DB := data/demo.sqlite3

.PHONY: demo test bench loadtest lint eval train clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: this version's CPU build comes from the machine's wheel cache;
	# any other request would download a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(PY) bot.py members import examples/register.csv --db $(DEMO_DB) | tail -n 1
	$(PY) bot.py replay examples/forum.jsonl --db $(DEMO_DB)
	$(PY) bot.py mod --db $(DEMO_DB) --as console:mod_karen queue

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_digest.py

# bot.py run with both adapters against loopback fakes at 20 messages/s for 5 minutes.
loadtest: $(STAMP)
	$(PY) scripts/loadtest.py

lint: $(STAMP)
	$(PY) -m ruff check bot adapters tests scripts bot.py
	$(PY) -m mypy

eval: $(STAMP)
	$(PY) bot.py eval

# Fine-tunes the offline model into bot/scoring/model/ (36 minutes on 2 cores with little else
# running, about 80 when shared; needs ../shared/data). Never part of `make test`.
train: $(STAMP)
	$(PY) scripts/train_model.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
