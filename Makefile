# Quick start: `make demo` (distil on real photos, CPU) and `make test`.
PYTHON ?= python
# the torch / torchvision pair the project is tested with; override for your CUDA build
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install test
install:
	$(PYTHON) -m pip install -q $(TORCH_SPEC)
	$(PYTHON) -m pip install -q -e '.[test,teachers,export]'

test: install
	$(PYTHON) -m pytest -q
