"""The new user's path, end to end, as the README tells it: the demo; plain arrays with a skeleton of one's own
(a layout file) converted to a pickle and checked; fine-tuning on it; then one command, from the main
environment, from the real NTU video to a JSON timeline naming each person and their classes."""

import json

import numpy as np
import pytest
import yaml
from conftest import SHARED, shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations, read_label_map
from skeletonmae.skeleton import layout_yaml

VIDEO = SHARED / "videos" / "ntu_sample.avi"
TINY = ["data.clip_len=8", "data.num_workers=0", "encoder.dim=16", "encoder.layers=1", "finetune.epochs=1",
        "finetune.batch_size=16", "finetune.warmup_epochs=0", "trainer.limit_train_batches=2", "trainer.progress=false"]


def test_demo_then_own_arrays_with_a_layout_file_then_a_video_to_a_timeline(tmp_path, capsys):
    from skeletonmae.pose import mediapipe_available
    from skeletonmae.pose_env import pose_python

    if not VIDEO.is_file():
        pytest.skip(f"sample video {VIDEO} absent (../shared missing)")
    if not mediapipe_available():
        pose_python()  # a missing pose environment fails here, with the message that says how to build it

    # 1. the demo
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())

    # 2. own data: 4 real Penn Action clips of each class as (x, y, score) arrays in class folders, in a layout of
    #    one's own
    source = load_annotations(shared_pickle("penn_action"))
    names = read_label_map(shared_pickle("penn_action").parent / "label_map.txt")
    clips = [a for k in range(len(names)) for a in [a for a in source.annotations if a["label"] == k][:4]]
    for a in clips:
        folder = tmp_path / "clips" / names[a["label"]]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{a['frame_dir']}.npy", np.concatenate([a["keypoint"][0], a["keypoint_score"][0, ..., None]],
                                                                 axis=-1))
    spec = yaml.safe_load(layout_yaml("penn13"))
    spec["name"] = "my_skeleton"
    layout = tmp_path / "my_skeleton.yaml"
    layout.write_text(yaml.safe_dump(spec))
    data = tmp_path / "mine.pkl"
    h, w = source.annotations[0]["img_shape"]
    assert main(["data", "convert", "arrays", str(tmp_path / "clips"), str(data), "--layout", str(layout), "--score",
                 "--img-shape", str(h), str(w)]) == 0
    assert main(["data", "check", str(data), "--layout", str(layout)]) == 0
    assert "result: OK, usable" in capsys.readouterr().out

    # 3. fine-tune the generic 2D config on it; the checkpoint keeps the layout, so the file can go
    run = tmp_path / "run"
    assert main(["finetune", "--config", "generic_2d", "--out", str(run), f"data.path={data}",
                 f"data.layout={layout}", "data.val_fraction=0", *TINY]) == 0
    layout.unlink()
    checkpoint = run / "checkpoints" / "last.ckpt"
    metrics = json.loads((run / "metrics.json").read_text())
    test = load_annotations(data, layout="penn13").split["test"]  # every clip of the file's test split was scored
    assert metrics["split"] == "test" and sum(map(sum, metrics["confusion"])) == len(test) > 0

    # 4. the video, in one command: a timeline of each person's classes
    out = tmp_path / "video.json"
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(checkpoint), str(VIDEO), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["class_names"] == sorted(names)  # the label map written beside the converted pickle
    rows = report["timeline"]["rows"]
    assert [row["person"] for row in rows] == [0, 1]
    for row in rows:
        assert row["end_s"] > row["start_s"] == 0.0 and all(name in report["class_names"] for name, _ in row["top"])
