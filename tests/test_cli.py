"""The command line, end to end: help, errors without tracebacks, and a tiny real-data run."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED, shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations

SUBCOMMANDS = [["pretrain"], ["finetune"], ["ablate"], ["test"], ["predict"], ["data"], ["data", "check"],
               ["data", "demo"], ["data", "layout"], ["data", "convert"], ["data", "convert", "ntu"],
               ["data", "convert", "arrays"], ["data", "convert", "openpose"], ["demo"], ["export"], ["visualize"],
               ["visualize", "reconstruction"], ["visualize", "pca"], ["visualize", "confusion"],
               ["visualize", "curves"], ["config"], ["config", "show"]]


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("pretrain", "finetune", "test", "data", "demo"):
        assert name in out


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: skeletonmae" in capsys.readouterr().out


def test_training_help_documents_every_config_key(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    for key in ("encoder.layers", "mae.target", "pretrain.lr", "finetune.milestones", "data.clip_len"):
        assert key in out


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"skeletonmae {version('skeletonmae')}"


def test_config_show_prints_the_merged_config_with_descriptions(capsys):
    import yaml

    from skeletonmae.config import Config, load_config

    assert main(["config", "show", "--config", "penn_action", "encoder.dim=32", "data.val_group=_s(\\d+)"]) == 0
    out = capsys.readouterr().out
    assert "  dim: 32  # D, joint feature width (paper: 64) [default: 64]" in out
    assert "  layout: penn13  # the joint layout the file was recorded in" in out
    merged = load_config("penn_action", ["encoder.dim=32", "data.val_group=_s(\\d+)"])
    assert Config.from_dict(yaml.safe_load(out)) == merged and merged.data.val_group == "_s(\\d+)"
    assert yaml.safe_load(out)["classifier"]["strl_layers"] == 1  # the packaged recipe, not the default 3
    assert main(["config", "show", "encoder.dimm=3"]) == 2
    assert "Did you mean 'encoder.dim'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["pretrain", "finetune", "ablate"])
def test_training_help_shows_the_values_of_the_config_given(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--config", "penn_action", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "  classifier.strl_layers = 1  # M, STRL layers" in out and "  data.layout = penn13" in out
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "  classifier.strl_layers = 3  # M, STRL layers" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([command, "--config", "penn_actoin", "--help"])
    assert e.value.code == 2 and "Did you mean penn_action" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "skeletonmae.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "pretrain" in out.stdout


HEAVY = ("torch", "lightning", "matplotlib")


def test_building_the_parser_imports_nothing_heavy():
    """Importing the CLI and building its parser stays fast: torch, Lightning and matplotlib come with commands."""
    code = ("import sys; import skeletonmae.cli as c; c.build_parser(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_pose_command_imports_neither_torch_nor_yaml():
    """MediaPipe's environment has numpy but no torch and no PyYAML: ``python -m skeletonmae.cli.pose`` runs there."""
    blocked = ["yaml", *HEAVY]  # a None entry in sys.modules makes `import x` raise ImportError
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); "
            "import skeletonmae.cli, skeletonmae.cli.pose as p; p.main(['--help'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: python -m skeletonmae.cli.pose" in out.stdout


def test_data_check_real_file(capsys):
    assert main(["data", "check", str(shared_pickle("penn_action")), "--layout", "penn13"]) == 0
    out = capsys.readouterr().out
    assert "clips: 2326" in out and "split 'train': 1258 clips" in out and "result: OK" in out


def test_data_check_reports_problems(tmp_path, capsys):
    from conftest import make_sample

    from skeletonmae.data.annotations import save_annotations

    path = save_annotations(tmp_path / "bad.pkl", [make_sample("ok"), make_sample("bad_one", label=-2)],
                            {"train": ["ok", "bad_one"]})
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "sample 'bad_one': 'label' -2 is out of range" in out and "NOT usable" in out


def test_hostile_pickle_through_cli(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("HACKED",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [Evil()]}))
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "refusing to load 'builtins.print'" in out and "HACKED" not in out


def test_config_typo_is_one_paragraph_no_traceback(capsys):
    assert main(["pretrain", "encoder.layer=2"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'encoder.layers'" in err and "Traceback" not in err


def test_demo_data_command(tmp_path, capsys):
    pytest.importorskip("skeletonmae.data.synthetic")
    assert main(["data", "demo", str(tmp_path / "d.pkl"), "--per-class", "2"]) == 0
    assert main(["data", "check", str(tmp_path / "d.pkl"), "--layout", "coco17"]) == 0


@pytest.mark.slow
def test_pretrain_finetune_test_on_real_data(tmp_path, capsys):
    """A few steps of the whole pipeline on Penn Action, through the CLI."""
    data = shared_pickle("penn_action")
    common = [f"data.path={data}", "data.clip_len=8", "data.test_clips=2", "data.num_workers=0",
              "trainer.limit_train_batches=2", "trainer.progress=false", "encoder.dim=16", "encoder.layers=2",
              "classifier.strl_layers=1"]
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    assert main(["pretrain", "--config", "penn_action", "--out", str(pre), "pretrain.epochs=1",
                 "pretrain.batch_size=16", *common]) == 0
    ckpt = pre / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (pre / "logs" / "metrics.csv").is_file()
    # a run directory is never overwritten silently
    assert main(["pretrain", "--config", "penn_action", "--out", str(pre), *common]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["finetune", "--config", "penn_action", "--out", str(ft), "--pretrained", str(ckpt),
                 "finetune.epochs=1", "finetune.batch_size=16", "finetune.warmup_epochs=0", *common]) == 0
    metrics = json.loads((ft / "metrics.json").read_text())
    assert metrics["num_samples"] == 1068 and 0 <= metrics["top1"] <= 1
    assert len((ft / "predictions.csv").read_text().splitlines()) == 1069
    # a pre-trained encoder of another width is refused with the reason
    assert main(["finetune", "--config", "penn_action", "--out", str(tmp_path / "ft2"), "--pretrained", str(ckpt),
                 *common, "encoder.dim=32"]) == 2
    assert "encoder.dim: encoder 16, config 32" in capsys.readouterr().err
    assert main(["test", "--checkpoint", str(ft / "checkpoints" / "last.ckpt"), "--out", str(tmp_path / "t"),
                 "data.test_clips=1"]) == 0
    again = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert again["num_samples"] == 1068
    # predict: the same clips through the Python API and the CLI, with the class names of label_map.txt
    from skeletonmae.inference import load

    ft_ckpt = ft / "checkpoints" / "last.ckpt"
    predictor = load(ft_ckpt)
    assert predictor.class_names[0] == "baseball_pitch"
    clip = load_annotations(data).samples("test")[0]
    r = predictor.predict(clip["keypoint"], clip["keypoint_score"], clip["img_shape"], layout="penn13")
    assert len(r["top"]) == 5 and abs(sum(r["scores"]) - 1) < 1e-5
    out_json = tmp_path / "pred.json"
    assert main(["predict", "--checkpoint", str(ft_ckpt), str(data), "--split", "test", "--out", str(out_json)]) == 0
    preds = json.loads(out_json.read_text())["predictions"]
    assert len(preds) == 1068 and preds[0]["frame_dir"] == clip["frame_dir"]
    assert preds[0]["scores"] == pytest.approx(r["scores"], abs=1e-5)
    npy = tmp_path / "clip.npy"
    import numpy as np

    np.save(npy, clip["keypoint"])
    assert main(["predict", "--checkpoint", str(ft_ckpt), str(npy), "--img-shape", *map(str, clip["img_shape"]),
                 "--layout", "penn13", "--out", str(tmp_path / "one.json")]) == 0
    # a model normalised by body size needs no frame size; (x, y, confidence) arrays are read as such
    xyc = tmp_path / "xyc.npy"
    np.save(xyc, np.concatenate([clip["keypoint"][0], clip["keypoint_score"][0][..., None]], -1))  # [T, V, 3]
    assert main(["predict", "--checkpoint", str(ft_ckpt), str(xyc), "--layout", "penn13", "--out",
                 str(tmp_path / "xyc.json")]) == 0
    xyc_pred = json.loads((tmp_path / "xyc.json").read_text())["predictions"][0]
    assert xyc_pred["scores"] == pytest.approx(r["scores"], abs=1e-5) and "label" not in xyc_pred

    # video -> action: poses from the real NTU clip in MediaPipe's environment, then classified here
    pose_python = Path(__file__).resolve().parents[1] / ".venv-pose" / "bin" / "python"
    video = SHARED / "videos" / "ntu_sample.avi"
    if pose_python.is_file() and video.is_file():
        clip_pkl = tmp_path / "ntu_clip.pkl"
        proc = subprocess.run([str(pose_python), "-m", "skeletonmae.cli.pose", str(video), "--out", str(clip_pkl)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert main(["predict", "--checkpoint", str(ft_ckpt), str(clip_pkl), "--layout", "coco17", "--out",
                     str(tmp_path / "video.json")]) == 0
        video_preds = json.loads((tmp_path / "video.json").read_text())["predictions"]
        assert video_preds[0]["frame_dir"] == "ntu_sample" and len(video_preds[0]["top"]) == 5


VIDEO = SHARED / "videos" / "ntu_sample.avi"


def _subprocess_path_or_skip(need_pose_environment: bool = True) -> None:
    """Skip unless predict takes the subprocess path here: MediaPipe does not import, and a pose environment exists."""
    from skeletonmae.errors import SkeletonMAEError
    from skeletonmae.pose import mediapipe_available
    from skeletonmae.pose_env import pose_python

    if mediapipe_available():
        pytest.skip("MediaPipe imports in this environment, so predict extracts poses in-process, not in a subprocess")
    if need_pose_environment:
        try:
            pose_python()
        except SkeletonMAEError as e:
            pytest.skip(f"no pose environment (make .venv-pose/.installed builds it): {e}")


def _junk_video(folder: Path) -> Path:
    junk = folder / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 50)
    return junk


def test_predict_video_through_the_pose_environment(penn_checkpoint, tmp_path, capfd):
    """One command from the main environment, which cannot import MediaPipe: poses come from the pose environment in
    a subprocess, and the JSON holds a timeline naming the two people, the times and the classes."""
    if not VIDEO.is_file():
        pytest.skip(f"sample video {VIDEO} absent (../shared missing)")
    _subprocess_path_or_skip()
    out, png, poses = tmp_path / "predictions.json", tmp_path / "timeline.png", tmp_path / "poses.pkl"
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(VIDEO), "--timeline-png", str(png),
                 "--poses", str(poses), "--out", str(out)]) == 0
    stdout, stderr = capfd.readouterr()
    assert "in the pose environment" in stderr and "XNNPACK" not in stderr and "W0000" not in stderr
    report = json.loads(out.read_text())
    (whole,) = report["predictions"]
    assert whole["frame_dir"] == "ntu_sample" and "label" not in whole
    timeline = report["timeline"]
    assert timeline["window"] == 90  # the 72-frame clip is one window, per person
    rows = timeline["rows"]
    assert [row["person"] for row in rows] == [0, 1]  # the two people walking up to each other
    for row in rows:
        assert row["clip"] == "ntu_sample"
        assert (row["start_frame"], row["end_frame"], row["start_s"], row["end_s"]) == (0, 72, 0.0, 2.4)
        assert all(name in report["class_names"] for name, _ in row["top"]) and len(row["top"]) == 5
        assert f"person {row['person']} 0.00-2.40 s: {row['top'][0][0]}" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (clip,) = load_annotations(poses, layout="coco17", labelled=False).annotations
    assert clip["label"] == -1 and clip["fps"] == 30 and clip["keypoint"].shape == (2, 72, 17, 2)


def test_predict_video_reports_a_failure_in_the_pose_environment(penn_checkpoint, tmp_path, capfd):
    _subprocess_path_or_skip()
    junk = _junk_video(tmp_path)
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(junk), "--out", str(tmp_path / "p.json")]) == 2
    err = capfd.readouterr().err
    assert "skeletonmae.cli.pose: error: " in err and "OpenCV cannot open it as a video" in err  # the tool's own
    assert f"skeletonmae: error: pose extraction of {junk} failed in the pose environment" in err
    assert "Traceback" not in err and not (tmp_path / "p.json").exists()


def test_predict_video_names_a_missing_pose_environment(penn_checkpoint, tmp_path, monkeypatch, capsys):
    _subprocess_path_or_skip(need_pose_environment=False)
    monkeypatch.setenv("SKELETONMAE_POSE_PYTHON", str(tmp_path / "nowhere" / "python"))
    junk = _junk_video(tmp_path)
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(junk), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert f"SKELETONMAE_POSE_PYTHON={tmp_path / 'nowhere' / 'python'}: no such file" in err
    assert "Traceback" not in err and not (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_demo_quick_runs_the_whole_pipeline_twice(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert set(first) == {"pretrained", "scratch"} and 0 <= first["pretrained"]["top1"] <= 1
    assert main(["demo", "--quick", "--out", str(out)]) == 0  # repeatable: finished runs are only re-tested
    assert json.loads((out / "summary.json").read_text())["scratch"]["top1"] == first["scratch"]["top1"]


@pytest.mark.slow
def test_ablation_runner_runs_cells_and_resumes(tmp_path):
    from skeletonmae.ablation import PRESETS, _split_cell

    assert len(PRESETS["tab4c"][1]) == 18 and len(PRESETS["tab5a"][1]) == 8
    assert [_split_cell(c)[0] for c in PRESETS["tab5a"][1][:2]] == ["auto", "none"]  # '"auto"' is YAML for auto
    data = shared_pickle("penn_action")
    common = [f"data.path={data}", "data.clip_len=8", "data.test_clips=1", "data.num_workers=0",
              "trainer.limit_train_batches=2", "trainer.progress=false", "encoder.dim=16", "classifier.strl_layers=1",
              "pretrain.epochs=1", "pretrain.batch_size=16", "finetune.epochs=1", "finetune.batch_size=16",
              "finetune.warmup_epochs=0"]
    args = ["ablate", "--config", "penn_action", "--out", str(tmp_path / "abl"), "--results", str(tmp_path / "res"),
            "--name", "tiny", "--cell", "encoder.layers=1", "--cell", "encoder.layers=2 "
            "finetune.pretrained=none", *common]
    assert main(args) == 0
    rows = json.loads((tmp_path / "res" / "ablation_tiny.json").read_text())["rows"]
    assert [r["pretrained"] for r in rows] == [True, False]
    assert "| encoder.layers=1 |" in (tmp_path / "abl" / "table.md").read_text()
    assert main(args) == 0  # finished cells are read back, not run again
    again = json.loads((tmp_path / "res" / "ablation_tiny.json").read_text())["rows"]
    assert [r["metrics"] for r in again] == [r["metrics"] for r in rows]
    assert main(["ablate", "--config", "penn_action", "--cell", "encoder.layerz=1"]) == 2


@pytest.mark.slow
def test_ablation_transfer_cell_pretrains_on_the_source_dataset(tmp_path):
    from skeletonmae.ablation import preset

    title, cells = preset("fig5", "jhmdb14")
    assert len(cells) == 12 and "jhmdb14" in title and cells[1] == ["mae.mask_regions=[0]", "pretrain.config=jhmdb14"]
    shared_pickle("jhmdb14")
    common = ["data.clip_len=8", "data.test_clips=1", "data.num_workers=0", "trainer.limit_train_batches=2",
              "trainer.progress=false", "encoder.dim=16", "classifier.strl_layers=1", "pretrain.epochs=1",
              "pretrain.batch_size=16", "finetune.epochs=1", "finetune.batch_size=16", "finetune.warmup_epochs=0"]
    assert main(["ablate", "--config", "penn_action", "--out", str(tmp_path / "abl"), "--results", str(tmp_path),
                 "--name", "transfer", "--cell", "mae.mask_regions=[1] pretrain.config=jhmdb14", *common]) == 0
    pre = (tmp_path / "abl" / "cell00_seed0" / "pretrain" / "config.yaml").read_text()
    ft = (tmp_path / "abl" / "cell00_seed0" / "finetune" / "config.yaml").read_text()
    assert "jhmdb14.pkl" in pre and "penn_action.pkl" in ft and "mask_regions:\n  - 1" in pre
    assert main(["ablate", "--config", "penn_action", "--preset", "fig5"]) == 2  # no --source


def test_training_reports_each_epoch_with_validation_lr_and_eta_and_no_adverts(tmp_path, capfd):
    """A real fine-tuning run on the demo data with a validation split: one line per epoch with the validation
    metric, the learning rate and the run's ETA; the learning rate in the logs; test progress; no Lightning tips."""
    import csv

    data = tmp_path / "demo.pkl"
    assert main(["data", "demo", str(data), "--per-class", "8"]) == 0  # 11 classes: 55 clips train, 11 validate
    run = tmp_path / "run"
    assert main(["finetune", "--config", "demo", "--out", str(run), f"data.path={data}", "data.val_fraction=0.25",
                 "data.clip_len=8", "data.test_clips=1", "encoder.dim=8", "encoder.layers=1",
                 "classifier.strl_layers=1", "finetune.epochs=3", "finetune.batch_size=8", "finetune.warmup_epochs=0",
                 "finetune.milestones=[2]", "finetune.pretrained=none", "trainer.progress=true"]) == 0
    out, err = capfd.readouterr()
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"], epochs
    assert all(" val top1 " in line and " lr " in line and " elapsed" in line for line in epochs), epochs
    assert ", ETA " in epochs[0] and ", ETA " not in epochs[-1]
    assert " lr 0.05 " in epochs[0] and " lr 0.005 " in epochs[-1]  # 0.1 x 8/16, then / 10 from epoch 2
    assert "Epoch 2/3 (run ETA " in out and "Testing" in out
    for advert in ("Tip", "litlogger", "litmodels", "GPU available", "LOCAL_RANK"):
        assert advert not in out + err
    with open(run / "logs" / "metrics.csv") as f:
        lrs = [float(row["lr-SGD"]) for row in csv.DictReader(f) if row["lr-SGD"]]
    assert lrs == pytest.approx([0.05, 0.05, 0.005])
    assert 0 <= json.loads((run / "metrics.json").read_text())["val_top1"] <= 1
    assert list((run / "tb").glob("events.out.tfevents.*"))
