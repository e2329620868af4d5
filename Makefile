# valori-store developer entry points. Each target creates .venv and installs as needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# Thin ecosystem-named packages (re-exports only), installed editable beside the core.
THIN_PKGS := $(wildcard integrations/*/*/pyproject.toml)

.PHONY: demo test test-fast bench bench-quick crossarch notebooks fuzz stress clean

$(STAMP): pyproject.toml $(THIN_PKGS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	$(foreach p,$(THIN_PKGS),$(PY) -m pip install -q --disable-pip-version-check --no-deps -e $(dir $(p)) &&) true
	@touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,bench]"
	@touch $@

## demo: build a durable store from the bundled corpus, search, checkpoint, restore, reopen
demo: $(STAMP)
	$(PY) -m valori_store.cli.demo

## test: the whole suite (includes JIT-off and multi-thread runs in subprocesses)
test: $(STAMP)
	$(PY) -m pytest -q

## bench: benchmarks against numpy and FAISS; JSON + PNG in benchmarks/results/
bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results

bench-quick: $(BENCH_STAMP)
	$(PY) benchmarks/run.py --quick --out benchmarks/results/quick

## fuzz: the loaders' fuzz tests with 50x the CI budget and fresh random examples
fuzz: $(STAMP)
	VALORI_FUZZ_EXAMPLES=3000 VALORI_FUZZ_RANDOM=1 $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

## stress: crash loop (100 SIGKILLs), threads + processes, soak; prints what it checked (not in CI)
stress: $(STAMP)
	$(PY) stress/run.py all

## notebooks: execute every notebook in notebooks/ in place (outputs are committed)
notebooks: $(STAMP)
	$(PY) notebooks/run.py

## crossarch: golden workload on x86-64 and emulated aarch64 must match bit for bit
crossarch: $(STAMP)
	bash .ci/crossarch.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist
