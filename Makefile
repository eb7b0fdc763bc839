# Quick start: `make demo` (distil on real photos, CPU) and `make test`.
PYTHON ?= python
# the torch / torchvision pair the project is tested with; override for your CUDA build
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# e.g. make demo DEMO_ARGS="--force --threads 1"; make bench BENCH_ARGS="--device cuda"
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: install test demo bench bench-quality study study-report study-diagnostics study-v2 study-v2-report fuzz
install:
	$(PYTHON) -m pip install -q $(TORCH_SPEC)
	$(PYTHON) -m pip install -q -e '.[test,demo,teachers,export]'

test: install
	DUKD_EVERY_EXTRA=1 $(PYTHON) -m pytest -q

# DUKD end to end on scikit-image's photos: data, the shipped teacher, 3 students, table and pictures in demo_output/
# (installs only when the package, its demo extra or the pinned torch is missing; `make install` forces it)
demo:
	@$(PYTHON) scripts/check_install.py dukd scikit-image matplotlib $(TORCH_SPEC) || $(MAKE) install
	$(PYTHON) scripts/demo.py $(DEMO_ARGS)

# the seeded fuzzer over bad inputs (tests/fuzz/): 2,120 mutated option files (20 of them through train.py),
# broken images, datasets and checkpoints; each a clear refusal naming the key or file, or a checked correct run
# (about 5 minutes on a 2-core CPU; docs/RESULTS.md section 5). CI runs the 212-input sample (tests/fuzz/test_fuzz.py).
fuzz:
	OMP_NUM_THREADS=1 $(PYTHON) tests/fuzz/run_fuzz.py --seed 0 --scale 10

# step time / memory ratios (SRModel, KDModel, DUKD variants) and data-loading throughput
bench: install
	$(PYTHON) benchmarks/bench_speed.py $(BENCH_ARGS)
	$(PYTHON) scripts/make_demo_data.py
	$(PYTHON) benchmarks/bench_data.py

# the demo comparison over 3 seeds plus the ablation rows (long: about an hour on a 2-core CPU)
bench-quality: install
	$(PYTHON) benchmarks/bench_quality.py $(BENCH_ARGS)

# the gain study (docs/gain_protocol.md): Debian's nature photos, its data, its 77 runs (and 12 post-hoc ones) two at a time
# (about 10 hours on a 2-core CPU; stop it any time, the same command resumes) and its report
study:
	$(PYTHON) scripts/fetch_photos.py
	$(PYTHON) benchmarks/bench_gain.py data
	$(PYTHON) benchmarks/bench_gain.py run --jobs 2 --threads 1

study-report:
	$(PYTHON) benchmarks/bench_gain.py report

# post-hoc diagnostics of the finished runs (needs their weights under experiments/): docs/RESULTS.md section 0
study-diagnostics:
	$(PYTHON) benchmarks/gain_diagnostics.py

# gain study v2 (docs/gain_protocol_v2.md): 37 Debian photographs, the public PAN x4 teacher (PAN_CKPT), scored on
# the four benchmark sets under BENCH_ROOT (Set5/ Set14/ BSD68/ Urban100/); about 35 hours on a 2-core CPU, resumable
PAN_CKPT ?= ../shared/data/teachers/PANx4_DF2K.pth
BENCH_ROOT ?= datasets/benchmarks
study-v2:
	$(PYTHON) scripts/fetch_photos.py --set corpus
	$(PYTHON) benchmarks/bench_gain_v2.py data --bench-root $(BENCH_ROOT)
	$(PYTHON) benchmarks/bench_gain_v2.py labels --teacher $(PAN_CKPT)
	$(PYTHON) benchmarks/bench_gain_v2.py pilot --jobs 2 --threads 1
	$(PYTHON) benchmarks/bench_gain_v2.py bicubic --bench-root $(BENCH_ROOT)
	$(PYTHON) benchmarks/bench_gain_v2.py run --jobs 2 --threads 1 --teacher $(PAN_CKPT) --bench-root $(BENCH_ROOT)

study-v2-report:
	$(PYTHON) benchmarks/bench_gain_v2.py report
