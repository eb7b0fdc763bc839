# make demo   DUKD end to end on scikit-image's photos (CPU, ~10 min); DEMO_ARGS="--force" retrains
# make test   the test suite
# make bench  speed and data-loading benchmarks (quality: make bench-quality, long)
PYTHON ?= python
DEMO_ARGS ?=
BENCH_ARGS ?=
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: demo test bench bench-quality deps

deps:  # install only when something is missing (a fresh machine); never touches a working setup
	@$(PYTHON) -c "import dukd_arch, skimage, matplotlib, lmdb, tqdm, yaml" 2>/dev/null || \
		$(PYTHON) -m pip install -e '.[test]'

demo: deps
	$(PYTHON) scripts/demo.py $(DEMO_ARGS)

test: deps
	$(PYTHON) -m pytest -q tests

bench: deps
	$(PYTHON) benchmarks/bench_speed.py $(BENCH_ARGS)
	$(PYTHON) benchmarks/bench_data.py $(BENCH_ARGS)

bench-quality: deps
	$(PYTHON) benchmarks/bench_quality.py $(BENCH_ARGS)
