"""Hostile and careless inputs, every one through the command line, as an attacker or a hurried user would give
them. Each case asserts the exit code, a message that names the problem, no traceback, that no file outside the
run directory was created or changed, and (for the hostile pickles) that no code ran.

Groups: (1) pickles that try to run code; (2) outputs that would destroy files; (3) run directories shared by two
runs; (4) runs killed by a scheduler; (5) inputs that used to give a silently wrong result; (6) inputs that ask
for unbounded memory; (7) values that used to end in a raw traceback. Nothing here needs root.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_sample

from skeletonmae.cli import main
from skeletonmae.data.annotations import save_annotations

FIXTURES = Path(__file__).parent / "fixtures"
CLASSIFIER = FIXTURES / "v0_finetune.ckpt"  # D = 8, COCO-17 2D, 11 classes
PRETRAINED = FIXTURES / "v0_pretrain.ckpt"
TINY = ["data.clip_len=8", "data.num_persons=1", "data.num_workers=0", "data.test_clips=1", "encoder.dim=8",
        "encoder.layers=1", "classifier.strl_layers=1", "classifier.head_hidden=8", "trainer.progress=false",
        "finetune.batch_size=4", "finetune.pretrained=none", "data.normalize=fix"]


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file under ``root`` (but ``skip``) with a hash of its bytes (a FIFO or device by its kind)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if path.is_symlink():
            out[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            out[str(path)] = "special"
    return out


@pytest.fixture
def cli(tmp_path, capsys):
    """Run the CLI; check exit code, message and no traceback; check nothing outside ``run`` changed."""

    def run(args: list[str], code: int, message: str, run: Path | None = None) -> str:
        before = snapshot(tmp_path, run)
        got = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert got == code, f"exit {got}, expected {code}: {err[-2000:]}"
        assert message in out + err, f"{message!r} not in: {(out + err)[-2000:]}"
        assert "Traceback" not in out + err
        after = snapshot(tmp_path, run)
        assert before == after or set(after) - set(before) == set(), (set(after) ^ set(before))
        assert {k: v for k, v in after.items() if k in before} == before, "a file outside the run changed"
        return err

    return run


@pytest.fixture
def data(tmp_path) -> Path:
    anns = [make_sample(f"c{i}", label=i % 3, t=10, seed=i) for i in range(12)]
    return save_annotations(tmp_path / "data.pkl", anns, {"train": [a["frame_dir"] for a in anns[:9]],
                                                          "test": [a["frame_dir"] for a in anns[9:]]})


def _pickle_that_runs(marker: Path, real: bool = False) -> bytes:
    """The reported exploit: numpy.dtypes + a dotted name reaches dict.get of builtins, then eval."""
    def s(text: str) -> bytes:
        return pickle.SHORT_BINUNICODE + bytes([len(text.encode())]) + text.encode()

    call = s("numpy.dtypes") + s("__builtins__.get") + pickle.STACK_GLOBAL + s("eval") + pickle.TUPLE1 + \
        pickle.REDUCE + s(f"__import__('os').system('touch {marker}')") + pickle.TUPLE1 + pickle.REDUCE
    if real:  # the payload rides inside real annotations, so a run would go on with exit 0
        body = pickle.dumps({"split": {"train": ["c0"], "test": ["c0"]},
                             "annotations": [make_sample("c0")]}, protocol=4)[2:-1]
        call = body + s("x") + call + pickle.SETITEM
    return pickle.PROTO + b"\x04" + call + pickle.STOP


# -- (1) pickles that run code ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["check", "pretrain", "finetune", "test", "predict", "pool"])
def test_a_pickle_that_runs_code_runs_nothing_in_any_command(tmp_path, cli, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(_pickle_that_runs(marker, real=command != "check"))
    run = tmp_path / "run"
    args = {
        "check": ["data", "check", evil],
        "pretrain": ["pretrain", "--out", run, f"data.path={evil}", *TINY],
        "finetune": ["finetune", "--out", run, f"data.path={evil}", *TINY],
        "test": ["test", "--checkpoint", CLASSIFIER, "--data", evil, "--out", run],
        "predict": ["predict", "--checkpoint", CLASSIFIER, evil, "--out", run / "p.json"],
        "pool": ["data", "pool", run / "pool.pkl", f"{evil}:coco17"],
    }[command]
    cli(args, 1 if command == "check" else 2, "refusing to load 'numpy.dtypes.__builtins__.get'", run)
    assert not marker.exists()


# -- (2) outputs that would destroy files ----------------------------------------------------------------------
def test_an_output_that_is_a_fifo_or_a_folder_is_left_alone(tmp_path, cli, data):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cli(["predict", "--checkpoint", CLASSIFIER, data, "--out", fifo], 2, "is a device, pipe or socket")
    assert fifo.exists() and not fifo.is_file()
    cli(["data", "demo", tmp_path, "--per-class", 1], 2, "it is a folder, not a regular file")


def test_an_output_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path, cli, data):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    cli(["predict", "--checkpoint", CLASSIFIER, data, "--out", link], 2, "is a symbolic link")
    cli(["export", "--checkpoint", CLASSIFIER, "--out", link], 2, "is a symbolic link")
    assert target.read_text() == "keep me" and link.is_symlink()


def test_outputs_that_are_inputs_are_refused(tmp_path, cli, data):
    cli(["data", "pool", data, f"{data}:coco17"], 2, "it is the input")
    cli(["predict", "--checkpoint", CLASSIFIER, data, "--out", data], 2, "it is the input")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(CLASSIFIER.read_bytes())
    cli(["export", "--checkpoint", ckpt, "--out", ckpt], 2, "it is the input")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "S001C001P001R001A001.skeleton").write_text("0\n")
    cli(["data", "convert", "ntu", raw, raw / "S001C001P001R001A001.skeleton"], 2, "it lies inside the input")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"confusion": [[1, 0], [0, 1]]}))
    cli(["visualize", "confusion", "--metrics", metrics, "--out", metrics], 2, "it is the input")


# -- (3) run directories ---------------------------------------------------------------------------------------
def test_a_second_run_into_a_busy_directory_is_refused(tmp_path, cli, data):
    from skeletonmae.tasks.trainer import run_lock

    run = tmp_path / "run"
    with run_lock(run):  # another process would hold it the same way
        cli(["finetune", "--out", run, f"data.path={data}", *TINY], 2, "is in use by another run", run)
    assert not (run / "config.yaml").exists()


@pytest.mark.slow
def test_resume_appends_to_the_metrics_log(tmp_path, cli, data):
    run = tmp_path / "run"
    args = ["pretrain", "--out", run, f"data.path={data}", *TINY, "pretrain.batch_size=3", "pretrain.lr=1e-3"]
    assert main([str(a) for a in [*args, "pretrain.epochs=1"]]) == 0
    first = (run / "logs" / "metrics.csv").read_text().splitlines()
    assert main([str(a) for a in [*args, "pretrain.epochs=2", "--resume"]]) == 0
    both = (run / "logs" / "metrics.csv").read_text().splitlines()
    epochs = {line.split(",")[0] for line in both[1:]}
    assert len(both) > len(first) and {"0", "1"} <= epochs


# -- (4) a scheduler's SIGTERM ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint_and_fails_loudly(tmp_path, data):
    run = tmp_path / "run"
    args = ["pretrain", "--out", str(run), f"data.path={data}", *TINY, "pretrain.batch_size=1", "pretrain.lr=1e-3",
            "pretrain.epochs=1000", "trainer.log_every_n_steps=1"]
    proc = subprocess.Popen([sys.executable, "-m", "skeletonmae.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (run / "logs" / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] > 0
    assert main([*args[:-2], f"pretrain.epochs={saved['epoch'] + 2}", "--resume"]) == 0  # it resumes


# -- (5) what used to succeed silently -------------------------------------------------------------------------
def _save(tmp_path, anns, name="d.pkl", train=None):
    names = [a["frame_dir"] for a in anns]
    return save_annotations(tmp_path / name, anns, {"train": names if train is None else train, "test": names})


def test_silently_wrong_inputs_are_refused(tmp_path, cli, data):
    run = tmp_path / "run"
    empty = _save(tmp_path, [make_sample("a"), make_sample("b", label=1)], "empty.pkl", train=[])
    cli(["finetune", "--out", run, f"data.path={empty}", *TINY], 2, "holds no clip to train on", run)
    zeros = make_sample("z")
    zeros["keypoint"] = np.zeros_like(zeros["keypoint"])
    cli(["data", "check", _save(tmp_path, [zeros], "zeros.pkl")], 1, "no joint is present in any frame")
    unseen = make_sample("u")
    unseen["keypoint_score"] = np.zeros_like(unseen["keypoint_score"]) - 1
    cli(["finetune", "--out", run, f"data.path={_save(tmp_path, [unseen], 'unseen.pkl')}", *TINY], 2,
        "every score <= 0", run)
    one_class = _save(tmp_path, [make_sample("a"), make_sample("b")], "one_class.pkl")
    cli(["finetune", "--out", run, f"data.path={one_class}", *TINY], 2, "needs at least 2 classes", run)
    cli(["finetune", "--out", run, f"data.path={data}", *TINY, "finetune.batch_size=60000"], 2,
        "finetune.batch_size=60000 is larger than the 9 training clips", run)
    cli(["pretrain", "--out", run, f"data.path={data}", *TINY, "mae.mask=joints", "mae.mask_ratio=1.5"], 2,
        "'mae.mask_ratio' must be in (0, 1)", run)


def test_nan_weights_in_a_checkpoint_are_refused(tmp_path, cli, data):
    ckpt = torch.load(CLASSIFIER, weights_only=True)
    key = next(iter(ckpt["state_dict"]))
    ckpt["state_dict"][key] = torch.full_like(ckpt["state_dict"][key], float("nan"))
    bad = tmp_path / "nan.ckpt"
    torch.save(ckpt, bad)
    cli(["predict", "--checkpoint", bad, data, "--out", tmp_path / "p.json"], 2, "holds NaN/inf weights")


def test_a_label_map_with_a_header_is_refused(tmp_path, cli, data):
    (tmp_path / "label_map.txt").write_text("class_name\nwalk\nrun\njump\n")
    cli(["finetune", "--out", tmp_path / "run", f"data.path={data}", *TINY], 2, "is a header, remove it",
        tmp_path / "run")


def test_top_k_must_be_positive(tmp_path, capsys, data):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--checkpoint", str(CLASSIFIER), str(data), "--top-k", "-3"])
    assert e.value.code == 2 and "expected a whole number >= 1, got -3" in capsys.readouterr().err


def test_clips_without_a_label_get_no_accuracy(tmp_path, capsys, data):
    clip = make_sample("nolabel", label=-1)
    path = save_annotations(tmp_path / "nolabel.pkl", [clip], {"test": ["nolabel"]})
    assert main(["predict", "--checkpoint", str(CLASSIFIER), str(path), "--out", str(tmp_path / "p.json")]) == 0
    assert "top-1 against" not in capsys.readouterr().out
    assert "label" not in json.loads((tmp_path / "p.json").read_text())["predictions"][0]


# -- (6) memory ------------------------------------------------------------------------------------------------
def test_a_pickle_declaring_13_gb_allocates_nothing(tmp_path, cli):
    import resource

    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(pickle.PROTO + b"\x04" + pickle.BINBYTES8 + struct.pack("<Q", 13_600_000_000) + b"\0" * 300
                     + pickle.STOP)
    assert bomb.stat().st_size < 333
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cli(["data", "check", bomb], 1, "truncated or corrupt")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


@pytest.mark.parametrize("override, message", [
    ("data.test_clips=100000", "'data.test_clips' must be in [1, 100]"),
    ("data.clip_len=1000000", "'data.clip_len' must be in [1, 1024]"),
    ("encoder.dim=100000", "'encoder.dim' must be in [1, 1024]"),
])
def test_config_values_cannot_ask_for_unbounded_memory(tmp_path, cli, data, override, message):
    cli(["finetune", "--out", tmp_path / "run", f"data.path={data}", *TINY, override], 2, message, tmp_path / "run")


# -- (7) what used to end in a traceback -----------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(keypoint_score=np.array(["high"] * 170, dtype=object).reshape(1, 10, 17)), "not allowed"),
    (lambda a: a.update(img_shape=("tall", "wide")), "'img_shape' must be (height, width)"),
    (lambda a: a.update(label=[[1]]), "'label' must be an int class index"),
    (lambda a: a.update(label=2**62), "is out of range"),
    (lambda a: a.update(total_frames="ten"), "'total_frames' is 'ten'"),
    (lambda a: a.update(keypoint=a["keypoint"].astype(np.int32)), "'keypoint' must be float"),
])
def test_sample_values_of_the_wrong_kind(tmp_path, cli, change, message):
    ann = make_sample("x", t=10)
    change(ann)
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump({"split": {"train": ["x"], "test": ["x"]}, "annotations": [ann]}, f, protocol=4)
    cli(["data", "check", path], 1, message)
    cli(["finetune", "--out", tmp_path / "run", f"data.path={path}", *TINY], 2, message, tmp_path / "run")


def test_a_recursion_bomb_is_refused(tmp_path, cli):
    bomb = tmp_path / "deep.pkl"
    bomb.write_bytes(pickle.PROTO + b"\x04" + pickle.EMPTY_LIST * 100_000 + pickle.APPEND * 99_999 + pickle.STOP)
    cli(["data", "check", bomb], 1, "nested deeper than")


@pytest.mark.parametrize("override, message", [
    ("finetune.lr=-1", "'finetune.lr' must be in (0, 10]"),
    ("finetune.lr=.nan", "'finetune.lr' must be in (0, 10], got nan"),
    ("data.num_workers=-1", "'data.num_workers' must be in [0, 64]"),
    ("classifier.dropout=5", "'classifier.dropout' must be in [0, 1)"),
    ("trainer.devices=0", "'trainer.devices' must be 'auto' or a count >= 1"),
    ("trainer.precision=banana", "'trainer.precision' is 'banana'"),
    ("trainer.accelerator=gpu", "the trainer settings do not work here"),
    ("trainer.strategy=nonsense", "the trainer settings do not work here"),
])
def test_config_and_lightning_values(tmp_path, cli, data, override, message):
    if override == "trainer.accelerator=gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cli(["finetune", "--out", tmp_path / "run", f"data.path={data}", *TINY, override], 2, message, tmp_path / "run")


def test_yaml_files_that_mislead(tmp_path, cli, data):
    dup = tmp_path / "dup.yaml"
    dup.write_text("encoder:\n  dim: 8\n  dim: 16\n")
    cli(["finetune", "--config", dup, "--out", tmp_path / "run"], 2, "key 'dim' is given twice")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("data:\n  path: caf\xe9.pkl\n".encode("latin-1"))
    cli(["finetune", "--config", latin, "--out", tmp_path / "run"], 2, "is not UTF-8 text")


def test_os_errors_on_output_are_one_line(tmp_path, cli, data):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder is expected")
    cli(["predict", "--checkpoint", CLASSIFIER, data, "--out", blocker / "p.json"], 2, "Not a directory")
    cli(["finetune", "--out", blocker / "run", f"data.path={data}", *TINY], 2, "blocker")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder(tmp_path, cli, data):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        cli(["predict", "--checkpoint", CLASSIFIER, data, "--out", ro / "p.json"], 2, "Permission denied")
    finally:
        ro.chmod(0o700)


def test_checkpoint_mismatches(tmp_path, cli, data):
    run = tmp_path / "run"
    cli(["finetune", "--out", run, f"data.path={data}", *TINY, "encoder.dim=8", "encoder.layers=1",
         "finetune.pretrained=" + str(CLASSIFIER)], 2, "is a fine-tuned classifier, not a pre-training checkpoint", run)
    tampered = torch.load(CLASSIFIER, weights_only=True)
    tampered["hyper_parameters"]["num_classes"] = 1000
    bad = tmp_path / "tampered.ckpt"
    torch.save(tampered, bad)
    cli(["predict", "--checkpoint", bad, data, "--out", tmp_path / "p.json"], 2, "do not fit the model")
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    cli(["predict", "--checkpoint", empty, data, "--out", tmp_path / "p.json"], 2, "could not be loaded safely")
    clip3d = save_annotations(tmp_path / "clip3d.pkl", [make_sample("a", c=3)], {"test": ["a"]})
    cli(["predict", "--checkpoint", CLASSIFIER, clip3d, "--out", tmp_path / "p.json"], 2,
        "the model was trained on 2D (x, y) joints; the input has 3D")
    cli(["export", "--checkpoint", CLASSIFIER, "--opset", 5, "--out", tmp_path / "m.onnx"], 2,
        "the exporter writes opsets")
    cli(["finetune", "--out", run, f"data.path={data}", *TINY[:-1], "encoder.dim=16", "finetune.pretrained="
         + str(PRETRAINED)], 2, "encoder.dim: encoder 8, config 16", run)
