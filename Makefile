# Set-up and main jobs. `make demo` and `make test` work on a fresh machine: they create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check install browser bench bench-fit docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,fit,sweep]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neurospike compare izhikevich2007 --methods euler,backward-euler,rk2,exp-euler,rk4 --dt 0.1 \
		--times 0,250,500,750,1000 --out report/

# The browser tests drive Debian's chromium (never `playwright install`); installed here when missing (root or sudo).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q chromium >/dev/null || { $$SUDO apt-get update -q >/dev/null && \
		$$SUDO apt-get install -y -q chromium >/dev/null; } || \
		echo "make: could not install chromium; the browser tests will be skipped"; }

# Every test (what CI runs), on both cores; `make check` is the fast loop: the tests not marked slow (PINN
# training, the paper study, the examples, chromium, the 20 reference presets), under 2 minutes on 2 cores.
# --max-worker-restart=0: a worker that crashes ends the run with its test failed; with a restart, pytest-xdist
# 3.8's loadfile scheduler waits forever for the files the dead worker had already finished.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart=0
test: $(STAMP) browser
	$(PYTEST)

check: $(STAMP)
	$(PYTEST) -m "not slow"

# Benchmarks (figures in docs/benchmarks.md, docs/fractional.md, docs/pinn/); Brian2 lives in its own venv because it needs numpy < 2.4.
BENCH := .venv-bench
$(BENCH)/.installed: pyproject.toml
	test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install --quiet -e ".[bench]"
	touch $@

bench: $(STAMP) $(BENCH)/.installed browser
	$(BIN)/python benchmarks/single_neuron.py
	$(BENCH)/bin/python benchmarks/population.py --float32 --fast-math --openmp-threads 2,1
	$(BENCH)/bin/python benchmarks/fractional.py
	$(BIN)/python benchmarks/pinn.py
	$(BIN)/python benchmarks/app.py

# The fitting benchmark (docs/fit.md) against brian2modelfitting's TraceFitter + Nevergrad, which lives in a venv of
# its own without neurospike: brian2modelfitting 0.4 pins nevergrad 0.3.0, which uses np.float (gone in numpy 1.24),
# so numpy 1.23.5 and the scipy, pandas, scikit-learn, lmfit that still take it.
MODELFITTING := .venv-modelfitting
$(MODELFITTING)/.installed:
	test -x $(MODELFITTING)/bin/python || $(PYTHON) -m venv $(MODELFITTING)
	$(MODELFITTING)/bin/python -m pip install --quiet "numpy==1.23.5" "brian2==2.9.0" "brian2modelfitting==0.4" \
		"nevergrad==0.3.0" "bayesian-optimization==1.5.0" "scipy==1.15.3" "pandas==2.3.3" "scikit-learn==1.7.2" \
		"lmfit==1.3.2" "scikit-optimize==0.10.2" "efel==5.7.34" "cma==4.5.0" "Cython==3.3.1" setuptools
	touch $@

bench-fit: $(STAMP) $(MODELFITTING)/.installed
	$(BIN)/python benchmarks/fit.py

# Regenerate the Izhikevich (2004) pattern table in docs/.
docs: $(STAMP)
	$(BIN)/python docs/izhikevich_patterns.py
	$(BIN)/python docs/fractional_figure.py

clean:
	rm -rf $(VENV) $(BENCH) $(MODELFITTING) report
