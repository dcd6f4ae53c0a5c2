"""Shared fixtures: the real datasets in ../shared/data (skipped cleanly when absent) and small files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Keep test runs on the two cores of a CI machine predictable.
os.environ.setdefault("OMP_NUM_THREADS", "2")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# name -> (layout, train split, test split)
DATASETS = {
    "penn_action": ("penn13", "train", "test"),
    "jhmdb14": ("jhmdb15", "train1", "test1"),
    "nw_ucla": ("kinect20", "xview_train", "xview_val"),
    "utkinect": ("kinect20", "xsub_train", "xsub_val"),
    "florence3d": ("florence15", "xsub_train", "xsub_val"),
}


def _stick_layout():
    from skeletonmae.skeleton import Layout

    return Layout(name="stick", joints=("head", "neck", "left_hand", "right_hand", "left_foot", "right_foot"),
                  bones=((0, 1), (1, 2), (1, 3), (1, 4), (1, 5)), center=1,
                  regions=((0,), (1,), (2,), (3,), (4,), (5,)))


STICK = _stick_layout()  # a layout without shoulders and hips (six joints, one per region)


def shared_pickle(name: str) -> Path:
    path = SHARED / name / f"{name}.pkl"
    if not path.is_file():
        pytest.skip(f"real dataset {path} not available (../shared/data is absent)")
    return path


def make_sample(frame_dir="s0", label=0, m=1, t=8, v=17, c=2, seed=0, img_shape=(100, 200)):
    rng = np.random.default_rng(seed)
    ann = {
        "frame_dir": frame_dir,
        "label": label,
        "total_frames": t,
        "keypoint": rng.uniform(0, 100, (m, t, v, c)).astype(np.float32),
    }
    if c == 2:
        ann["keypoint_score"] = rng.uniform(0.5, 1, (m, t, v)).astype(np.float32)
        ann["img_shape"] = ann["original_shape"] = img_shape
    return ann


@pytest.fixture
def small_pickle(tmp_path):
    """A valid 2D COCO-17 annotation pickle with 3 classes x 4 clips, split train/test."""
    from skeletonmae.data.annotations import save_annotations

    anns = [make_sample(f"c{i}", label=i % 3, t=5 + i, m=1 + i % 2, seed=i) for i in range(12)]
    split = {"train": [a["frame_dir"] for a in anns[:8]], "test": [a["frame_dir"] for a in anns[8:]]}
    return save_annotations(tmp_path / "small.pkl", anns, split)


@pytest.fixture(scope="session")
def penn_checkpoint(tmp_path_factory):
    """A tiny classifier fine-tuned for a few steps on the real Penn Action set (13 joints, 15 named classes): a
    real checkpoint in seconds, for tests of what uses one, not of accuracy."""
    from skeletonmae.cli import main

    data = shared_pickle("penn_action")
    out = tmp_path_factory.mktemp("penn_ft")
    assert main(["finetune", "--config", "penn_action", "--out", str(out), f"data.path={data}", "data.clip_len=8",
                 "data.num_workers=0", "encoder.dim=16", "encoder.layers=1", "classifier.strl_layers=1",
                 "finetune.epochs=1", "finetune.batch_size=16", "finetune.warmup_epochs=0", "finetune.test=false",
                 "trainer.limit_train_batches=2", "trainer.progress=false"]) == 0
    return out / "checkpoints" / "last.ckpt"
