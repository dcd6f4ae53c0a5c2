"""Multi-process training through Lightning's DDP strategy (2 CPU processes, gloo)."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import make_sample

from skeletonmae.data.annotations import save_annotations
from skeletonmae.models.build import load_checkpoint


def _run(data, out, devices, batch):
    cmd = [sys.executable, "-m", "skeletonmae.cli", "pretrain", "--out", str(out), f"data.path={data}",
           "data.layout=coco17", "data.clip_len=12", "data.num_persons=1", "data.num_workers=0", "data.pixel_noise=0",
           "encoder.dim=16", "encoder.layers=2", "encoder.norm=layernorm", "mae.mask_regions=[2, 5]",
           f"pretrain.batch_size={batch}", "pretrain.epochs=1", "pretrain.lr=1e-2", "trainer.progress=false",
           "trainer.accelerator=cpu", f"trainer.devices={devices}", "trainer.strategy=" + ("ddp" if devices > 1
                                                                                           else "auto")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1",
                                                                                "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    """One optimiser step on the whole (32-clip) set: 1 process x 32 clips vs 2 processes x 16 clips.

    With a fixed mask, no noise and a per-sample norm (LayerNorm), the averaged DDP gradient equals the
    single-process one, so the weights after the step agree to float rounding (tolerance 1e-5).
    """
    anns = [make_sample(f"c{i}", label=i % 2, t=12, seed=i, img_shape=(100, 100)) for i in range(32)]
    data = save_annotations(tmp_path / "d.pkl", anns, {"train": [a["frame_dir"] for a in anns], "test": []})
    one = _run(data, tmp_path / "one", 1, 32)
    two = _run(data, tmp_path / "two", 2, 16)
    assert one.keys() == two.keys()
    changed = 0
    for k in one:
        torch.testing.assert_close(one[k], two[k], rtol=0, atol=1e-5, msg=k)
        changed += int(not torch.equal(one[k], torch.zeros_like(one[k])))
    assert changed > 5


@pytest.mark.slow
def test_testing_on_two_processes_gives_the_metrics_of_one(tmp_path):
    """`skeletonmae test` on 2 processes (each tests part of the split, metrics synchronised) writes exactly the
    metrics and predictions of 1 process; 11 test clips do not split evenly, so no clip may count twice."""
    anns = [make_sample(f"c{i}", label=i % 3, t=12, seed=i, img_shape=(100, 100)) for i in range(27)]
    split = {"train": [a["frame_dir"] for a in anns[:16]], "test": [a["frame_dir"] for a in anns[16:]]}
    data = save_annotations(tmp_path / "d.pkl", anns, split)
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    common = [f"data.path={data}", "data.layout=coco17", "data.clip_len=12", "data.num_persons=1",
              "data.num_workers=0", "data.test_clips=2", "encoder.dim=8", "encoder.layers=1",
              "classifier.strl_layers=1", "classifier.head_hidden=8", "trainer.progress=false",
              "trainer.accelerator=cpu"]
    cmd = [sys.executable, "-m", "skeletonmae.cli"]
    proc = subprocess.run([*cmd, "finetune", "--out", str(tmp_path / "ft"), "finetune.epochs=1",
                           "finetune.batch_size=8", *common], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = str(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    reports = {}
    for devices in (1, 2):
        out = tmp_path / f"test{devices}"
        strategy = "ddp" if devices > 1 else "auto"
        proc = subprocess.run([*cmd, "test", "--checkpoint", ckpt, "--out", str(out), "finetune.batch_size=4",
                               f"trainer.devices={devices}", f"trainer.strategy={strategy}", *common[-2:]],
                              capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports[devices] = (json.loads((out / "metrics.json").read_text()), (out / "predictions.csv").read_text())
    (one, one_csv), (two, two_csv) = reports[1], reports[2]
    assert one["num_samples"] == two["num_samples"] == 11
    for key in ("top1", "top5", "mean_class_acc", "confusion"):
        assert one[key] == two[key], key
    assert one_csv == two_csv
