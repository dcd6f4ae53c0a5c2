"""The grid runner shared by ``skeletonmae ablate`` and experiments/finetune_compare.py: runs, resume, rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import skeletonmae.tasks.finetune
import skeletonmae.tasks.pretrain
from skeletonmae.ablation import run_ablation
from skeletonmae.errors import ConfigError
from skeletonmae.grid import GridRun, run_grid


@pytest.fixture
def fake_training(monkeypatch):
    """run_pretrain / run_finetune replaced by stand-ins that record their configs and write what the real ones
    write (a checkpoint; metrics.json)."""
    calls: dict[str, list] = {"pretrain": [], "finetune": []}

    def run_pretrain(cfg):
        calls["pretrain"].append(cfg)
        path = Path(cfg.trainer.out_dir) / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("checkpoint")
        return path

    def run_finetune(cfg):
        calls["finetune"].append(cfg)
        report = {"top1": 0.5 + cfg.trainer.seed / 10, "top5": 0.9, "mean_class_acc": 0.4, "train_seconds": 7.0}
        Path(cfg.trainer.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.trainer.out_dir) / "metrics.json").write_text(json.dumps(report))
        return report

    monkeypatch.setattr(skeletonmae.tasks.pretrain, "run_pretrain", run_pretrain)
    monkeypatch.setattr(skeletonmae.tasks.finetune, "run_finetune", run_finetune)
    return calls


def _row(run, report, seconds):
    return {"name": run.info["name"], "top1": report["top1"], "seconds": seconds}


def test_grid_runs_pretrains_and_resumes(tmp_path, fake_training):
    runs = [GridRun(tmp_path / "a", None, ["trainer.seed=0"], info={"name": "a"}),
            GridRun(tmp_path / "b" / "finetune", None, ["trainer.seed=1"], pretrain_dir=tmp_path / "b" / "pretrain",
                    pretrain_config="demo", pretrain_overrides=["pretrain.epochs=2"], info={"name": "b"})]
    written = []
    rows = run_grid(runs, _row, lambda r: written.append([x["name"] for x in r]))
    assert [(r["name"], r["top1"]) for r in rows] == [("a", 0.5), ("b", 0.6)]
    assert written == [["a"], ["a", "b"]]  # the results after every run
    (pre,) = fake_training["pretrain"]
    assert pre.pretrain.epochs == 2 and pre.data.path == "runs/demo/demo.pkl"  # the pre-training config
    assert Path(pre.trainer.out_dir) == tmp_path / "b" / "pretrain"
    fa, fb = fake_training["finetune"]
    assert Path(fa.trainer.out_dir) == tmp_path / "a" and fa.finetune.pretrained == "auto"
    assert fb.finetune.pretrained == str(tmp_path / "b" / "pretrain" / "checkpoints" / "last.ckpt")

    again = run_grid(runs, _row)  # finished runs are read back, not run again
    assert len(fake_training["finetune"]) == 2 and len(fake_training["pretrain"]) == 1
    assert [(r["name"], r["top1"]) for r in again] == [("a", 0.5), ("b", 0.6)]

    (tmp_path / "b" / "finetune" / "metrics.json").unlink()  # an unfinished run: only it runs
    prior = [{"name": "baseline"}]
    rows = run_grid(runs, _row, rows=prior)
    assert rows is prior and [r["name"] for r in rows] == ["baseline", "a", "b"]
    assert len(fake_training["finetune"]) == 3 and len(fake_training["pretrain"]) == 2


def test_grid_checks_every_config_before_the_first_run(tmp_path, fake_training):
    runs = [GridRun(tmp_path / "a", None, []),
            GridRun(tmp_path / "b", None, [], pretrain_dir=tmp_path / "p",
                    pretrain_overrides=["encoder.layer=2"])]
    written = []
    with pytest.raises(ConfigError, match="encoder.layers"):
        run_grid(runs, _row, written.append)
    assert fake_training == {"pretrain": [], "finetune": []} and not written


def test_ablation_rows_table_and_resume(tmp_path, fake_training):
    cells = [["encoder.layers=1"], ["encoder.layers=2", "finetune.pretrained=none"],
             ["encoder.layers=3", "pretrain.config=demo"]]
    path = run_ablation(None, cells, "tiny", "Tiny", tmp_path / "abl", [0, 1], ["encoder.dim=16"], tmp_path / "res",
                        command="skeletonmae ablate ...")
    assert path == tmp_path / "res" / "ablation_tiny.json"
    data = json.loads(path.read_text())
    assert data["title"] == "Tiny" and data["command"] == "skeletonmae ablate ..." and data["columns"] == ["cell"]
    rows = data["rows"]
    assert [list(r) for r in rows] == [["cell", "seed", "pretrained", "overrides", "metrics", "wall_seconds"]] * 6
    assert [(r["cell"], r["seed"], r["pretrained"]) for r in rows] == [
        ("encoder.layers=1", 0, True), ("encoder.layers=1", 1, True),
        ("encoder.layers=2 finetune.pretrained=none", 0, False),
        ("encoder.layers=2 finetune.pretrained=none", 1, False),
        ("encoder.layers=3 pretrain.config=demo", 0, True),
        ("encoder.layers=3 pretrain.config=demo", 1, True)]
    assert rows[1]["metrics"] == {"top1": 0.6, "top5": 0.9, "mean_class_acc": 0.4}
    assert len(fake_training["pretrain"]) == 4 and len(fake_training["finetune"]) == 6
    transfer = fake_training["pretrain"][2]  # cell 2, seed 0: pre-trained on the demo config, fine-tuned on the base
    assert transfer.data.path == "runs/demo/demo.pkl" and transfer.encoder.layers == 3
    assert Path(transfer.trainer.out_dir) == tmp_path / "abl" / "cell02_seed0" / "pretrain"
    ft = fake_training["finetune"][4]
    assert ft.data.path != "runs/demo/demo.pkl" and ft.encoder.dim == 16 and ft.trainer.resume
    assert ft.finetune.pretrained == transfer.trainer.out_dir + "/checkpoints/last.ckpt"
    assert fake_training["finetune"][2].finetune.pretrained == "none"
    table = (tmp_path / "abl" / "table.md").read_text()
    assert table.startswith("# Tiny\n\n| cell | seeds | top1 | mean class acc |")
    assert "| encoder.layers=1 | 2 | 55.0 ± 7.1 | 40.0 ± 0.0 |" in table

    run_ablation(None, cells, "tiny", "Tiny", tmp_path / "abl", [0, 1], ["encoder.dim=16"], tmp_path / "res")
    assert len(fake_training["finetune"]) == 6  # resumed: nothing ran
    again = json.loads(path.read_text())["rows"]
    assert [(r["cell"], r["seed"], r["pretrained"], r["metrics"]) for r in again] == [
        (r["cell"], r["seed"], r["pretrained"], r["metrics"]) for r in rows]


def _finetune_compare():
    path = Path(__file__).resolve().parents[1] / "experiments" / "finetune_compare.py"
    spec = importlib.util.spec_from_file_location("finetune_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_finetune_compare_runs_tiny_real_runs_and_resumes(tmp_path, monkeypatch, capsys):
    """experiments/finetune_compare.py on the embedded demo data: pre-train, fine-tune twice, baseline; again."""
    from skeletonmae.data.synthetic import write_demo_pickle

    data = write_demo_pickle(tmp_path / "demo.pkl", num_per_class=4, seed=0)
    real = skeletonmae.tasks.finetune.run_finetune
    calls = []
    monkeypatch.setattr(skeletonmae.tasks.finetune, "run_finetune", lambda cfg: calls.append(cfg) or real(cfg))
    argv = ["--config", "demo", "--epochs", "2", "--pretrain-epochs", "1", "--seeds", "0", "--fractions", "1.0",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res"), f"data.path={data}",
            "data.clip_len=8", "data.test_clips=1", "encoder.dim=8", "encoder.layers=1", "classifier.strl_layers=1",
            "trainer.limit_train_batches=2"]
    compare = _finetune_compare()
    assert compare.main(argv) == 0
    first = capsys.readouterr().out
    results = tmp_path / "res" / "demo_finetune.json"
    rows = json.loads(results.read_text())["rows"]
    assert [r["method"] for r in rows] == ["coordinate statistics + logistic regression",
                                           "SSL, SkeletonMAE pre-trained (G_E in the first STRL layer only)",
                                           "SSL, from scratch"]
    assert list(rows[1]) == ["dataset", "split", "protocol", "label_fraction", "seed", "epochs", "method", "corpus",
                             "pretrained", "pretrain_epochs", "metrics", "wall_seconds"]
    assert rows[1]["corpus"] == "demo: train" and rows[1]["pretrain_epochs"] == 1 and rows[2]["pretrained"] is False
    assert len(calls) == 2 and (tmp_path / "runs" / "demo_ft_scratch_f1.0_s0" / "metrics.json").is_file()

    assert compare.main(argv) == 0  # finished runs are read back: nothing is fine-tuned again
    assert len(calls) == 2
    again = json.loads(results.read_text())["rows"]
    assert again[1:] == rows[1:] and again[0]["metrics"] == rows[0]["metrics"]  # the baseline is fit again
    table = first[first.index("| method |"):]
    assert capsys.readouterr().out.endswith(table)
