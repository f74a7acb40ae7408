# Two commands for a fresh machine:  make train   (set up, then train +experiment=lstm)
#                                    make test    (set up, then run the test suite)
# Extra arguments go through ARGS, e.g.  make train ARGS="trainer.max_epochs=3"   make test ARGS="-k packing"
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch, installed first when the venv has no torch: an unpinned torch pulled in by
# lightning would otherwise be a multi-GB CUDA build. Set TORCH_SPEC to choose another build.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.seqlab-installed

.PHONY: install train test lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

train: install
	$(PY) -m seqlab train +experiment=lstm $(ARGS)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check seqlab tests benchmarks
	$(VENV)/bin/ruff format --check seqlab tests benchmarks

clean:
	rm -rf outputs multirun .pytest_cache
