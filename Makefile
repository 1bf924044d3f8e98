# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

# torch is pinned here, before `pip install -e`, to the CPU wheel that lies on this machine's disk (setup.cfg asks only
# torch>=2.3, which this wheel satisfies, so pip keeps it; a looser pin here would pull a multi-GB CUDA build).
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,export,distill]'
	touch $(STAMP)

demo: venv
	$(PY) -m dmenet.demo --out demo_out

test: venv
	$(PY) -m pytest -q --timeout=900 -p no:cacheprovider

bench: venv
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_predict.py

clean:
	rm -rf $(VENV) demo_out *.egg-info
