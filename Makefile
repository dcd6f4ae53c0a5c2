# Entry points: `make install` (both environments: .venv, and .venv-pose for videos), `make demo` (the main job on
# the embedded demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

POSE_VENV ?= .venv-pose
POSE_STAMP := $(POSE_VENV)/.installed

.PHONY: install demo test test-pose lint clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# MediaPipe (video -> poses) needs protobuf < 5, which onnx/tensorboard refuse: it gets its own environment.
$(POSE_STAMP): requirements-pose.txt pyproject.toml
	$(PYTHON) -m venv $(POSE_VENV)
	$(POSE_VENV)/bin/pip install -q -r requirements-pose.txt pytest==9.2.0
	$(POSE_VENV)/bin/pip install -q --no-deps -e .
	touch $(POSE_STAMP)

# `skeletonmae predict VIDEO` in .venv runs the pose extraction in .venv-pose (found beside the project).
install: $(STAMP) $(POSE_STAMP)

demo: $(STAMP)
	$(BIN)/skeletonmae demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint test-pose
	$(BIN)/python -m pytest -q

test-pose: $(POSE_STAMP)
	$(POSE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_pose.py

clean:
	rm -rf $(VENV) $(POSE_VENV) runs
