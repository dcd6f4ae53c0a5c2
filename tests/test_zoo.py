"""Packaged classifiers (skeletonmae.zoo): a real fine-tuned Penn Action run packaged, then used without training."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations, save_annotations
from skeletonmae.errors import CheckpointError
from skeletonmae.inference import load
from skeletonmae.zoo import CLASSIFIERS, SEARCH_ENV, package_classifier, read_card, write_zoo_table

COMMAND = "skeletonmae finetune --config penn_action (tiny test run)"


@pytest.fixture(scope="module")
def tested_run(penn_checkpoint, tmp_path_factory):
    """A copy of the tiny Penn Action run, tested on the real test split (one clip per sample)."""
    run = tmp_path_factory.mktemp("zoo") / "run"
    shutil.copytree(penn_checkpoint.parent.parent, run)
    assert main(["test", "--checkpoint", str(run / "checkpoints" / "last.ckpt"), "data.test_clips=1"]) == 0
    return run


@pytest.fixture(scope="module")
def packaged(tested_run, tmp_path_factory):
    """The tested run packaged as 'penn_tiny' into a classifiers folder of its own, with its model-zoo table."""
    folder = tmp_path_factory.mktemp("classifiers")
    path = package_classifier(tested_run, "penn_tiny", COMMAND, "abc1234", folder)
    write_zoo_table(folder)
    return path


@pytest.fixture(scope="module")
def penn_clips(tmp_path_factory):
    """Twelve real Penn Action test clips in an annotation pickle of their own."""
    clips = load_annotations(shared_pickle("penn_action")).samples("test")[::89]
    path = tmp_path_factory.mktemp("clips") / "penn12.pkl"
    return save_annotations(path, clips, {"test": [c["frame_dir"] for c in clips]})


def test_packaged_file_holds_weights_config_and_card_only(tested_run, packaged):
    checkpoint = tested_run / "checkpoints" / "last.ckpt"
    full = torch.load(checkpoint, weights_only=True)
    small = torch.load(packaged, weights_only=True)
    assert "optimizer_states" in full and set(small) == {"hyper_parameters", "state_dict", "card"}
    assert all(key.startswith("model.") for key in small["state_dict"])
    weights = sum(v.numel() * v.element_size() for v in small["state_dict"].values())
    assert packaged.stat().st_size < weights + 64 * 1024 < checkpoint.stat().st_size  # the optimiser's are gone
    hp = small["hyper_parameters"]
    assert hp["class_names"][0] == "baseball_pitch" and hp["num_classes"] == 15
    assert hp["config"]["data"]["layout"] == "penn13"


def test_packaged_classifier_predicts_what_its_checkpoint_predicts(tested_run, packaged, penn_clips):
    clips = load_annotations(penn_clips).samples("test")
    reference = load(tested_run / "checkpoints" / "last.ckpt").predict_samples(clips)
    for source in ("penn_tiny", packaged):
        predictor = load(source, classifiers=[packaged.parent])
        assert predictor.class_names == load(packaged).class_names
        got = predictor.predict_samples(clips)
        assert np.array_equal([r["scores"] for r in got], [r["scores"] for r in reference])


def test_card_and_zoo_table_name_the_file_its_accuracy_and_command(tested_run, packaged):
    metrics = json.loads((tested_run / "test" / "metrics.json").read_text())
    card = read_card(packaged)
    assert (card["dataset"], card["layout"], card["split"]) == ("penn_action", "penn13", "test")
    assert (card["top1"], card["mean_class_acc"], card["test_samples"], card["clips_per_sample"]) == (
        metrics["top1"], metrics["mean_class_acc"], 1068, 1)
    row = next(line for line in (packaged.parent / "README.md").read_text().splitlines()
               if line.startswith("| `penn_tiny`"))
    assert f"`{hashlib.sha256(packaged.read_bytes()).hexdigest()}`" in row
    assert f"test: {100 * metrics['top1']:.1f} % / {100 * metrics['mean_class_acc']:.1f} % (1068 samples)" in row
    assert f"`{COMMAND}` at `abc1234`" in row


def test_predict_model_through_the_cli(packaged, penn_clips, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(SEARCH_ENV, str(packaged.parent))
    by_name, by_checkpoint = tmp_path / "model.json", tmp_path / "checkpoint.json"
    assert main(["predict", "--model", "penn_tiny", str(penn_clips), "--out", str(by_name)]) == 0
    assert main(["predict", "--checkpoint", str(packaged), str(penn_clips), "--out", str(by_checkpoint)]) == 0
    report = json.loads(by_name.read_text())
    assert report["model"] == "penn_tiny" and report["checkpoint"] == str(packaged)
    assert report["predictions"] == json.loads(by_checkpoint.read_text())["predictions"]
    assert len(report["predictions"]) == 12
    with pytest.raises(SystemExit):  # one model only
        main(["predict", "--model", "penn_tiny", "--checkpoint", str(packaged), str(penn_clips)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_unknown_name_lists_the_packaged_ones(packaged, penn_clips, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(SEARCH_ENV, str(packaged.parent))
    assert main(["predict", "--model", "penn_tni", str(penn_clips), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "'penn_tni' is neither a file nor the name of a packaged classifier" in err
    listed = err.split("packaged: ")[1].split(". ")[0].split(", ")  # the package's own classifiers, and the test's
    assert "penn_tiny" in listed and "Traceback" not in err
    with pytest.raises(CheckpointError, match="none is installed"):
        load("penn_action", classifiers=[tmp_path])


def test_an_untested_run_is_not_packaged(penn_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="has not been tested.*skeletonmae test --checkpoint"):
        package_classifier(penn_checkpoint.parent.parent, "penn_tiny", COMMAND, "abc1234", tmp_path)
    assert not list(tmp_path.iterdir())
    assert not (CLASSIFIERS / "penn_tiny.pt").exists()
