# SynerMix: `make quickstart` (install + train every method on the bundled dataset), `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
METHODS := baseline,intra,intra_aug,mixup,manifold_mixup,synermix,synermix_mm
QUICKSTART_DIR ?= outputs/quickstart
QUICKSTART_SEEDS ?= 0,1,2
# parallel quickstart jobs / test workers, one torch thread each (OMP_NUM_THREADS=1)
JOBS ?= 2
SCALE ?= cpu
FIGURES_DIR ?= outputs/figures
RUNS ?=
DATA_ROOT ?=
FIGURE_ARGS = --scale $(SCALE) --out $(FIGURES_DIR) $(if $(RUNS),--runs $(RUNS)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
FIGURES := fig1 fig2 fig5 fig6 fig7 fig8 fig9 fig10 fig11 fig12

.PHONY: install quickstart lint test test-kernels test-all bench gpu-check figures $(FIGURES) mixers tensorboard data-fashion-mnist clean help

help:
	@echo "make quickstart   install into $(VENV), train all seven methods on digits, print their accuracies"
	@echo "make lint         ruff (lint + format check), mypy and the import-layer contract (import-linter)"
	@echo "make test         install into $(VENV), make lint, the test suite on JOBS=2 workers (slow tests excluded), then test-kernels"
	@echo "make test-kernels the numerically sensitive tests again on another CPU kernel set (ATEN_CPU_CAPABILITY)"
	@echo "make test-all     the test suite including tests marked slow"
	@echo "make bench        performance figures, median [min, max] over repetitions (about 7 minutes on 2 cores), outputs/bench/benchmark.csv"
	@echo "make gpu-check    on a CUDA machine: AMP / channels_last / compile step rates and a multi-GPU DDP check (exit 0 without CUDA)"
	@echo "make figN         paper figure N (1,2,5-12) at SCALE=smoke|cpu|paper: outputs/figures/figN.png + figN.csv"
	@echo "make mixers       every inter-class mixer with and without the intra-class term at SCALE: mixers.csv/.md/.png"
	@echo "make figures      every figure (SCALE=smoke: minutes; cpu: hours on 2 cores; paper: a GPU cluster)"
	@echo "make tensorboard  TensorBoard over outputs/"
	@echo "make data-fashion-mnist  install Debian's Fashion-MNIST package (root) for dataset=fashion_mnist"
	@echo "make clean        remove $(VENV) and outputs/"

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

quickstart: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) scripts/train.py --multirun method=$(METHODS) seed=$(QUICKSTART_SEEDS) \
	    out_root=$(QUICKSTART_DIR) hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS)
	@echo
	@echo "Final accuracy (mean of the last train.average_last epochs, over seeds $(QUICKSTART_SEEDS)):"
	$(PY) scripts/report.py $(QUICKSTART_DIR)

# Tests that compare two computations equal up to float rounding (1 vs N processes, resumed vs uninterrupted,
# the loss against direct computations): `make test` runs them a second time on another kernel set than this
# processor's default (AVX-512 -> AVX2, AVX2 -> the portable default), so a change made on one processor kind is
# checked on another.
KERNEL_TESTS := tests/test_distributed.py tests/test_reliability.py tests/test_losses.py tests/test_accelerator_paths.py tests/test_mixup.py \
	tests/test_recipe_resume.py
OTHER_KERNELS = $$($(PY) -c "import torch; print({'AVX512': 'avx2'}.get(torch.backends.cpu.get_cpu_capability(), 'default'))")

# The gate: the same checks as .pre-commit-config.yaml, on the code that is checked (pyproject.toml configures each)
LINTED := synermix scripts benchmarks tests
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP)
	$(MAKE) --no-print-directory lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(JOBS) --dist loadfile
	$(MAKE) --no-print-directory test-kernels

test-kernels: $(STAMP)
	@cap=$(OTHER_KERNELS); echo "Numerically sensitive tests again under ATEN_CPU_CAPABILITY=$$cap:"; \
	ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(JOBS) --dist loadfile $(KERNEL_TESTS)

test-all: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(JOBS) --dist loadfile -m "slow or not slow"

bench: $(STAMP)
	$(PY) -m benchmarks.run --out outputs/bench/benchmark.csv

gpu-check: $(STAMP)
	$(PY) -m benchmarks.gpu_check

$(FIGURES): $(STAMP)
	$(PY) scripts/figures.py $@ $(FIGURE_ARGS)

figures: $(STAMP)
	$(PY) scripts/figures.py all $(FIGURE_ARGS)

mixers: $(STAMP)
	$(PY) scripts/figures.py mixers $(FIGURE_ARGS)

tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir outputs

data-fashion-mnist:
	test -d /usr/share/datasets/fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }

clean:
	rm -rf $(VENV) outputs/runs outputs/quickstart outputs/figures
