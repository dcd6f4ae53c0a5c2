"""The validation split carved from the training split (data.val_fraction / val_group) and its use in training."""

import json
import re

import pytest
from conftest import make_sample, shared_pickle

from skeletonmae.config import load_config
from skeletonmae.data.annotations import load_annotations, save_annotations
from skeletonmae.data.dataset import SkeletonData, validation_split
from skeletonmae.errors import ConfigError


def _samples(per_class=(10, 10, 1)):
    return [{"frame_dir": f"c{c}_s{i % 5}_{i}", "label": c} for c, n in enumerate(per_class) for i in range(n)]


def test_stratified_split_by_class_is_deterministic():
    samples = _samples()
    train, val = validation_split(samples, 0.2, seed=3)
    assert [s["label"] for s in val].count(0) == 2 and [s["label"] for s in val].count(1) == 2
    assert not [s for s in val if s["label"] == 2]  # a class of one clip stays in training
    assert len(train) + len(val) == len(samples) and not {s["frame_dir"] for s in train} & {
        s["frame_dir"] for s in val}
    assert validation_split(samples, 0.2, seed=3) == (train, val)
    assert validation_split(samples, 0.0) == (samples, [])


def test_grouped_split_holds_out_whole_subjects_on_real_data():
    f = load_annotations(shared_pickle("nw_ucla"), layout="kinect20")
    samples = f.samples("xview_train")
    train, val = validation_split(samples, 0.2, r"_s(\d+)_", seed=0)
    subject = re.compile(r"_s(\d+)_")
    held = {subject.search(s["frame_dir"]).group(1) for s in val}
    kept = {subject.search(s["frame_dir"]).group(1) for s in train}
    assert held and not held & kept
    assert 0.1 < len(val) / len(samples) < 0.35
    assert {s["label"] for s in val} == {s["label"] for s in samples}  # every class is validated


def test_grouping_errors_name_the_key():
    with pytest.raises(ConfigError, match="finds no group in frame_dir"):
        validation_split(_samples(), 0.2, r"_x(\d+)")
    with pytest.raises(ConfigError, match="not a regular expression"):
        validation_split(_samples(), 0.2, "(")
    with pytest.raises(ConfigError, match="too few to hold out"):
        validation_split(_samples(), 0.2, r"^c(\d)")


def test_validation_comes_before_the_labelled_subset(tmp_path):
    anns = [make_sample(f"a{i}", label=i % 3, t=8, seed=i) for i in range(60)]
    path = save_annotations(tmp_path / "d.pkl", anns, {"train": [a["frame_dir"] for a in anns], "test": ["a0"]})
    cfg = load_config(None, [f"data.path={path}", "data.val_fraction=0.2", "data.label_fraction=0.5"])
    data = SkeletonData(cfg, 4)
    val = {s["frame_dir"] for s in data.val_samples()}
    train = {s["frame_dir"] for s in data.train_samples()}
    assert len(val) == 12 and len(train) == 24 and not val & train
    other_seed = SkeletonData(load_config(None, [f"data.path={path}", "data.val_fraction=0.2", "data.label_seed=5",
                                                 "data.label_fraction=0.5"]), 4)
    assert {s["frame_dir"] for s in other_seed.val_samples()} == val  # the same validation clips for every seed


@pytest.mark.slow
def test_a_validation_only_run_reports_validation_and_never_tests(tmp_path, small_pickle, capsys):
    from skeletonmae.cli import main

    anns = [make_sample(f"a{i}", label=i % 2, t=8, seed=i) for i in range(24)]
    path = save_annotations(tmp_path / "d.pkl", anns, {"train": [a["frame_dir"] for a in anns[:20]],
                                                      "test": [a["frame_dir"] for a in anns[20:]]})
    out = tmp_path / "run"
    assert main(["finetune", "--out", str(out), f"data.path={path}", "data.clip_len=8", "data.num_persons=1",
                 "data.num_workers=0", "data.test_clips=1", "data.val_fraction=0.25", "finetune.test=false",
                 "finetune.epochs=2", "finetune.batch_size=5", "encoder.dim=8", "encoder.layers=1",
                 "classifier.strl_layers=1", "classifier.head_hidden=8", "trainer.progress=false"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["tested"] is False and report["val_clips"] == 4 and 0 <= report["val_top1"] <= 1
    assert "top1" not in report and not (out / "predictions.csv").exists()
    log = (out / "logs" / "metrics.csv").read_text()
    assert "val/top1" in log and "lr-SGD" in log
    assert "optimiser steps" in capsys.readouterr().err  # 2 epochs x 3 batches: the few-steps warning


def test_a_batch_larger_than_the_data_is_refused(tmp_path, small_pickle, capsys):
    from skeletonmae.cli import main

    assert main(["finetune", "--out", str(tmp_path / "r"), f"data.path={small_pickle}", "finetune.batch_size=1000",
                 "data.clip_len=8"]) == 2
    assert "finetune.batch_size=1000 is larger than the 8 training clips" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.ckpt"))
