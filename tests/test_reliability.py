"""Runs that are killed resume to the same result; a diverging run stops cleanly; checkpoints are safe."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.config import load_config, save_config
from skeletonmae.errors import CheckpointError, SkeletonMAEError
from skeletonmae.models.build import load_checkpoint
from skeletonmae.tasks.trainer import check_same_run


def _args(data, out, epochs=3):
    return ["pretrain", "--config", "penn_action", "--out", str(out), f"data.path={data}", "data.clip_len=8",
            "data.num_workers=0", "encoder.dim=16", "encoder.layers=2", "pretrain.batch_size=16",
            f"pretrain.epochs={epochs}", "trainer.limit_train_batches=40", "trainer.progress=false",
            "trainer.deterministic=true", "trainer.seed=7"]


def _weights(out):
    return load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    data = shared_pickle("penn_action")
    assert main(_args(data, tmp_path / "straight")) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "skeletonmae.cli", *_args(data, killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run, right after the first checkpoint appeared
    proc.wait()
    first = load_checkpoint(killed / "checkpoints" / "last.ckpt")  # never a truncated file
    assert first["epoch"] < 3

    assert main(_args(data, killed)) == 2  # no silent overwrite without --resume
    assert main([*_args(data, killed), "pretrain.lr=0.001", "--resume"]) == 2  # nor with another run's config
    assert main([*_args(data, killed), "--resume"]) == 0
    a, b = _weights(tmp_path / "straight"), _weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


def test_resume_refuses_a_changed_config_and_names_the_key(tmp_path):
    saved = load_config("penn_action", ["finetune.weight_decay=0.005", f"trainer.out_dir={tmp_path}"])
    save_config(saved, tmp_path / "config.yaml")
    longer = load_config("penn_action", ["finetune.weight_decay=0.005", "finetune.epochs=200", "data.num_workers=0",
                                         "trainer.progress=false"])
    check_same_run(longer, tmp_path / "config.yaml")  # a longer schedule, elsewhere, with other workers: the same run
    with pytest.raises(SkeletonMAEError, match=r"finetune.weight_decay=0.005, not 0.0005"):
        check_same_run(load_config("penn_action", [f"trainer.out_dir={tmp_path}"]), tmp_path / "config.yaml")


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tmp_path, capsys):
    from conftest import make_sample

    from skeletonmae.data.annotations import save_annotations

    good = [make_sample(f"g{i}", label=i % 2, t=12, seed=i) for i in range(32)]
    bad = [{**a, "keypoint": a["keypoint"] * 1e36} for a in good]  # finite, but overflows float32 arithmetic
    split = {"train": [a["frame_dir"] for a in good], "test": []}
    out = tmp_path / "run"
    good_path = save_annotations(tmp_path / "good.pkl", good, split)
    fix = ["data.layout=coco17", "data.normalize=fix"]  # 'body' would scale the huge values back to normal
    assert main(_args(good_path, out, epochs=1) + fix) == 0
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    bad_path = save_annotations(tmp_path / "bad.pkl", bad, split)
    code = main(_args(bad_path, out, epochs=3) + [*fix, "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "training loss became nan at global step" in err and "batch 0" in err
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "t.ckpt"
    torch.save({"state_dict": {"w": torch.ones(100)}}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_finetune_refuses_foreign_checkpoint(tmp_path, capsys):
    path = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.ones(3)}, path)
    code = main(["finetune", "--config", "penn_action", "--out", str(tmp_path / "ft"), "--pretrained", str(path),
                 f"data.path={shared_pickle('penn_action')}"])
    assert code == 2 and "neither a pre-training checkpoint nor an encoder file" in capsys.readouterr().err


def _bad_files(tmp_path):
    """(name, path, expected message) for the catalogue of bad inputs."""
    from conftest import make_sample

    from skeletonmae.data.annotations import save_annotations

    def write(name, anns, split=None):
        split = split or {"train": [a["frame_dir"] for a in anns if isinstance(a, dict)], "test": []}
        return save_annotations(tmp_path / f"{name}.pkl", anns, split)

    good = make_sample("clip_1", t=8)
    cases = []
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(write("full", [good]).read_bytes()[:300])
    cases.append(("truncated pickle", truncated, "truncated or corrupt"))
    cases.append(("missing key", write("nokey", [{k: v for k, v in good.items() if k != "keypoint"}]),
                  "sample 'clip_1': missing key 'keypoint'"))
    cases.append(("wrong dtype", write("dtype", [{**good, "keypoint": good["keypoint"].astype(np.int64)}]),
                  "must be float, got dtype int64"))
    cases.append(("wrong rank", write("rank", [{**good, "keypoint": good["keypoint"][0]}]),
                  r"must be a float array \[M, T, V, C\]"))
    nan = {**good, "keypoint": good["keypoint"].copy()}
    nan["keypoint"][0, 3, 4, 1] = np.nan
    cases.append(("NaN coordinates", write("nan", [nan]), "NaN/inf"))
    cases.append(("empty clip", write("empty", [make_sample("clip_1", t=0)]), "empty clip"))
    cases.append(("V not matching the layout", write("v", [make_sample("clip_1", v=13)]),
                  "V = 13 joints but layout 'coco17' has 17"))
    cases.append(("label out of range", write("label", [make_sample("clip_1", label=-4)]),
                  "'label' -4 is out of range"))
    cases.append(("unknown split", write("split", [good], {"training": ["clip_1"]}), "unknown split 'train'"))
    cases.append(("not a dict", write("list", [[1, 2]]), "expected a dict, got list"))
    return cases


@pytest.mark.parametrize("index", range(10))
def test_bad_input_catalogue_through_the_cli(tmp_path, capsys, index):
    name, path, expected = _bad_files(tmp_path)[index]
    before = path.read_bytes()
    out = tmp_path / "run"
    code = main(["pretrain", "--out", str(out), f"data.path={path}", "data.layout=coco17", "data.num_workers=0",
                 "pretrain.epochs=1", "trainer.progress=false"])
    err = capsys.readouterr().err
    assert code == 2, name
    assert re.search(expected, err), (name, err)
    assert "Traceback" not in err and err.startswith("skeletonmae: error: ")
    assert path.read_bytes() == before and not (out / "checkpoints").exists()
    # --debug adds the traceback
    main(["--debug", "pretrain", "--out", str(out), f"data.path={path}", "data.layout=coco17", "data.num_workers=0"])
    assert "Traceback" in capsys.readouterr().err


def test_more_persons_than_p_keeps_the_most_confident(tmp_path):
    from conftest import make_sample

    from skeletonmae.config import load_config
    from skeletonmae.data.annotations import save_annotations
    from skeletonmae.data.dataset import SkeletonData

    ann = make_sample("crowd", m=4, t=8)
    ann["keypoint_score"][2] = 1.0  # the third person is the most confident
    path = save_annotations(tmp_path / "crowd.pkl", [ann], {"train": ["crowd"], "test": ["crowd"]})
    cfg = load_config(None, [f"data.path={path}", "data.num_workers=0", "data.clip_len=8", "data.num_persons=2",
                             "data.test_clips=1"])
    x, _, _ = next(iter(SkeletonData(cfg, 1).test_dataloader()))
    assert x.shape == (1, 1, 2, 8, 17, 2)
