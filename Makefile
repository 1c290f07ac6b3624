# Set-up and main jobs. `make demo` and `make test` work on a fresh machine: they create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neurospike compare izhikevich2007 --methods euler,backward-euler,rk2,exp-euler,rk4 --dt 0.1 \
		--times 0,250,500,750,1000 --out report/

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) report
