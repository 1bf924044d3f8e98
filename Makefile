# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

# torch is pinned to the CPU wheel that lies on this machine's disk; a looser pin pulls a multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,export]'
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
