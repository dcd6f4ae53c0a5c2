"""`skeletonmae runs ls|compare`: real fine-tuning runs on the demo data, read back as tables."""

import json
import shutil

import pytest

from skeletonmae.cli import main

TINY = ["data.clip_len=8", "data.test_clips=1", "encoder.dim=8", "encoder.layers=1", "classifier.strl_layers=1",
        "finetune.batch_size=8", "finetune.warmup_epochs=0", "finetune.milestones=[]",
        "trainer.limit_train_batches=2", "trainer.progress=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two fine-tuning runs of the demo config: one with a validation split, one without (other epochs, width)."""
    root = tmp_path_factory.mktemp("runs")
    data = root / "demo.pkl"
    assert main(["data", "demo", str(data), "--per-class", "8"]) == 0
    assert main(["finetune", "--config", "demo", "--out", str(root / "runs" / "val"), f"data.path={data}", *TINY,
                 "data.val_fraction=0.2", "finetune.epochs=2", "finetune.pretrained=none"]) == 0
    assert main(["finetune", "--config", "demo", "--out", str(root / "runs" / "group" / "wide"), f"data.path={data}",
                 *TINY, "finetune.epochs=1", "encoder.dim=16", "finetune.pretrained=none"]) == 0
    return root / "runs"


def _rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:] if line.strip()}


def test_runs_ls_lists_each_run_with_its_progress_and_scores(runs, capsys):
    assert main(["runs", "ls", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["run", "stage", "config", "dataset", "epochs", "pre-trained", "val",
                                           "top-1", "top-1", "mean", "class", "acc"]
    rows = _rows(out)
    assert set(rows) == {"val", "group/wide"}
    metrics = json.loads((runs / "val" / "metrics.json").read_text())
    assert rows["val"] == ["finetune", "demo", "demo", "2/2", "none", f"{metrics['val_top1']:.4f}",
                           f"{metrics['top1']:.4f}", f"{metrics['mean_class_acc']:.4f}"]
    assert rows["group/wide"][3:5] == ["1/1", "none"] and rows["group/wide"][5] == "-"  # no validation split


def test_runs_compare_shows_the_keys_that_differ(runs, capsys):
    assert main(["runs", "compare", str(runs / "val"), str(runs / "group" / "wide")]) == 0
    out = capsys.readouterr().out
    differing = out.split("config keys that differ:\n")[1]
    assert _rows(differing) == {"data.val_fraction": ["0.2", "0.0"], "encoder.dim": ["8", "16"],
                                "finetune.epochs": ["2", "1"]}


def test_runs_of_earlier_versions_and_bad_folders(runs, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(runs / "val", old)
    (old / "run.json").unlink()  # made before run.json existed: the config's setting is shown
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.yaml").write_text("a config file kept among the runs, not a run\n")
    assert main(["runs", "ls", str(tmp_path)]) == 0
    assert _rows(capsys.readouterr().out)["old"][:5] == ["finetune", "-", "demo", "2/2", "none"]
    assert main(["runs", "compare", str(tmp_path / "notes")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert main(["runs", "ls", str(tmp_path / "missing")]) == 2
    (old / "config.yaml").write_text("encoder:\n  dimm: 8\n")
    assert main(["runs", "ls", str(tmp_path)]) == 2
    assert "old/config.yaml is not the config of a run (unknown config key 'encoder.dimm'" in capsys.readouterr().err
