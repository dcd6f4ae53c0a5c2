"""Ensembles: the weight search on hand-made scores with a known answer, and `skeletonmae ensemble` on tiny real
runs (and its refusals)."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.ensemble import choose_weights, fuse, simplex_grid
from skeletonmae.errors import DataError
from skeletonmae.scores import Scores, read_scores, write_scores

LABELS = np.array([0, 1, 2, 0])


def one_hot(classes, num_classes=3, confidence=0.8) -> np.ndarray:
    """Probabilities [N, C] that give ``confidence`` to ``classes`` and share the rest."""
    out = np.full((len(classes), num_classes), (1 - confidence) / (num_classes - 1))
    out[np.arange(len(classes)), classes] = confidence
    return out


@pytest.mark.parametrize(("runs", "step"), [(2, 0.1), (3, 0.1), (4, 0.25), (4, 0.1)])
def test_the_grid_is_every_point_of_the_simplex_at_the_step(runs, step):
    grid = simplex_grid(runs, step)
    parts = round(1 / step)
    assert grid.shape == (math.comb(parts + runs - 1, runs - 1), runs)
    assert np.allclose(grid.sum(1), 1) and (grid >= 0).all()
    assert len(np.unique(np.round(grid * parts).astype(int), axis=0)) == len(grid)


def test_a_step_that_does_not_divide_one_is_refused():
    with pytest.raises(DataError, match="must divide 1"):
        simplex_grid(2, 0.3)


def test_the_weights_follow_the_run_that_is_right():
    right, wrong = one_hot(LABELS), one_hot([1, 2, 0, 1])
    weights, top1 = choose_weights(np.stack([wrong, right]), LABELS)
    assert top1 == 1.0 and weights[1] > 0.5  # any weight on `wrong` above 1/2 flips every answer
    assert weights.tolist() == pytest.approx([0.4, 0.6])  # of the perfect points, the nearest equal weights


def test_ties_give_equal_weights():
    same = one_hot(LABELS)
    weights, top1 = choose_weights(np.stack([same, same, same, same]), LABELS, step=0.25)
    assert top1 == 1.0 and weights.tolist() == [0.25] * 4


def test_a_fusion_beats_each_run_when_they_err_on_different_clips():
    labels = np.array([0, 1, 2, 0, 1, 2])
    a = one_hot([0, 1, 2, 1, 1, 2], confidence=0.5)  # wrong on clip 3, unsure everywhere
    b = one_hot([0, 1, 0, 0, 1, 2], confidence=0.5)  # wrong on clip 2
    c = one_hot([2, 1, 2, 0, 0, 2], confidence=0.9)  # wrong on clips 0 and 4, sure of itself
    probs = np.stack([a, b, c])
    weights, top1 = choose_weights(probs, labels)
    assert top1 == 1.0 and all((p.argmax(1) != labels).any() for p in probs)
    assert (fuse(probs, weights).argmax(1) == labels).all()
    assert weights[2] < weights[0] + weights[1]  # the sure but wrong run must not outvote the other two


def test_scores_files_round_trip(tmp_path):
    scores = Scores(["a,1", "b"], np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]))
    back = read_scores(write_scores(tmp_path / "scores.csv", scores))
    assert back.ids == scores.ids and back.labels.tolist() == [2, 0]
    np.testing.assert_allclose(back.probs, scores.probs)


# -- the command, on tiny real runs --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream_runs(tmp_path_factory):
    """Two streams (joint, bone) fine-tuned for two steps on the real UTKinect set, 20 % held out for validation."""
    data = shared_pickle("utkinect")
    root = tmp_path_factory.mktemp("streams")
    for stream in ("joint", "bone"):
        assert main(["finetune", "--config", "utkinect", "--out", str(root / stream), f"data.path={data}",
                     f"data.stream={stream}", "data.val_fraction=0.2", "data.clip_len=8", "data.num_workers=0",
                     "encoder.dim=16", "encoder.layers=1", "finetune.pretrained=none", "finetune.epochs=1",
                     "finetune.batch_size=16", "finetune.warmup_epochs=0", "finetune.milestones=[]",
                     "trainer.limit_train_batches=2", "trainer.progress=false"]) == 0
    return root


def test_runs_write_test_and_validation_scores_in_split_order(stream_runs):
    run = stream_runs / "joint"
    test, val = read_scores(run / "scores.csv"), read_scores(run / "val_scores.csv")
    with open(run / "predictions.csv", newline="") as f:
        predictions = list(csv.DictReader(f))
    assert test.ids == [p["frame_dir"] for p in predictions] and len(test.ids) == 99
    assert test.probs.argmax(1).tolist() == [int(p["pred"]) for p in predictions]
    assert np.allclose(test.probs.sum(1), 1, atol=1e-4) and np.allclose(val.probs.sum(1), 1, atol=1e-4)
    assert len(val.ids) == json.loads((run / "metrics.json").read_text())["val_clips"]
    assert not set(val.ids) & set(test.ids)
    with open(run / "logs" / "metrics.csv", newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("test/top1")]
    assert len(logged) == 1  # the validation pass logs as val_scores/*, not as a test


def test_the_test_command_scores_the_validation_part_again(stream_runs, tmp_path, capsys):
    run = stream_runs / "joint"
    assert main(["test", "--checkpoint", str(run / "checkpoints" / "last.ckpt"), "--validation",
                 "--out", str(tmp_path)]) == 0
    again, before = read_scores(tmp_path / "val_scores.csv"), read_scores(run / "val_scores.csv")
    assert again.ids == before.ids and np.allclose(again.probs, before.probs, atol=1e-5)
    assert main(["test", "--checkpoint", str(run / "checkpoints" / "last.ckpt"), "--validation",
                 "--out", str(tmp_path), "data.val_fraction=0"]) == 2
    assert "holds out no validation part" in capsys.readouterr().err


def test_ensemble_of_two_streams(stream_runs, capsys):
    out = stream_runs / "fused"
    runs = [str(stream_runs / "joint"), str(stream_runs / "bone")]
    assert main(["ensemble", *runs, "--out", str(out), "--step", "0.25"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert sum(report["weights"]) == pytest.approx(1) and report["weight_step"] == 0.25
    assert report["weights_chosen_on"].startswith("validation") and report["split"] == "xsub_val"
    assert [r["stream"] for r in report["runs"]] == ["joint", "bone"]
    assert [r["weight"] for r in report["runs"]] == report["weights"]
    own = [json.loads((stream_runs / s / "metrics.json").read_text())["top1"] for s in ("joint", "bone")]
    assert [r["top1"] for r in report["runs"]] == pytest.approx(own, abs=1e-6)
    # the metrics are those of the fused scores, chosen weights applied once to the test scores
    tests = [read_scores(stream_runs / s / "scores.csv") for s in ("joint", "bone")]
    fused = fuse(np.stack([t.probs for t in tests]), np.array(report["weights"]))
    assert report["top1"] == pytest.approx((fused.argmax(1) == tests[0].labels).mean(), abs=1e-6)
    equal = fuse(np.stack([t.probs for t in tests]), np.array([0.5, 0.5]))
    assert report["equal_weights"]["top1"] == pytest.approx((equal.argmax(1) == tests[0].labels).mean(), abs=1e-6)
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 100 and predictions[0] == "frame_dir,label,pred,score,top5"
    assert "ensemble on xsub_val" in capsys.readouterr().out


def _copy(stream_runs, name: str):
    run = stream_runs / name
    shutil.copytree(stream_runs / "bone", run, dirs_exist_ok=True)
    return run


def _refused(stream_runs, other, capsys) -> str:
    assert main(["ensemble", str(stream_runs / "joint"), str(other), "--out", str(stream_runs / "no")]) == 2
    assert not (stream_runs / "no").exists()
    return capsys.readouterr().err


def test_ensemble_refuses_runs_without_validation_scores(stream_runs, capsys):
    run = _copy(stream_runs, "no_val")
    (run / "val_scores.csv").unlink()
    assert "data.val_fraction" in _refused(stream_runs, run, capsys)


def test_ensemble_refuses_runs_on_other_splits(stream_runs, capsys):
    run = _copy(stream_runs, "other_carve")
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("val_seed: 0", "val_seed: 1"))
    assert "data.val_seed: 0 vs 1" in _refused(stream_runs, run, capsys)


def test_ensemble_refuses_runs_with_other_classes_or_samples(stream_runs, capsys):
    run = _copy(stream_runs, "other_classes")
    scores = read_scores(run / "scores.csv")
    write_scores(run / "scores.csv", Scores(scores.ids, scores.labels, scores.probs[:, :5]))
    assert "score 10 and 5 classes" in _refused(stream_runs, run, capsys)
    run = _copy(stream_runs, "other_samples")
    scores = read_scores(run / "val_scores.csv")
    write_scores(run / "val_scores.csv", Scores(scores.ids[::-1], scores.labels[::-1], scores.probs[::-1]))
    assert "validation samples of runs" in _refused(stream_runs, run, capsys)
