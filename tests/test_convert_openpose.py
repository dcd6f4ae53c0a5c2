"""`data convert openpose`: real Penn Action clips written as OpenPose per-frame JSON files come back unchanged."""

import json

import numpy as np
import pytest
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations, read_label_map
from skeletonmae.data.openpose import read_openpose_clips
from skeletonmae.errors import DataError


def _write_frames(folder, people_per_frame):
    folder.mkdir(parents=True)
    for t, people in enumerate(people_per_frame):
        frame = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.ravel().tolist()}
                                            for p in people]}
        (folder / f"video_{t:012d}_keypoints.json").write_text(json.dumps(frame))


def test_penn_action_clips_as_openpose_json(tmp_path, capsys):
    f = load_annotations(shared_pickle("penn_action"))
    names = read_label_map(shared_pickle("penn_action").parent / "label_map.txt")
    anns = f.annotations[::40]
    for a in anns:
        joints = np.concatenate([a["keypoint"][0], a["keypoint_score"][0][..., None]], axis=-1)  # [T, V, 3]
        people = [[j] for j in joints]
        people[1] = []  # OpenPose found no one in the second frame ...
        people[2] = [joints[2], joints[2] + [5, 0, 0]]  # ... and two people in the third
        _write_frames(tmp_path / "json" / names[a["label"]] / a["frame_dir"], people)
    out = tmp_path / "penn.pkl"
    assert main(["data", "convert", "openpose", str(tmp_path / "json"), str(out), "--layout", "penn13",
                 "--img-shape", "480", "640"]) == 0
    assert main(["data", "check", str(out), "--layout", "penn13"]) == 0
    assert "result: OK, usable" in capsys.readouterr().out
    converted = {a["frame_dir"]: a for a in load_annotations(out, layout="penn13").annotations}
    new_names = read_label_map(tmp_path / "label_map.txt")
    for a in anns:
        b = converted[f"{names[a['label']]}/{a['frame_dir']}"]
        assert new_names[b["label"]] == names[a["label"]] and b["keypoint"].shape[0] == 2
        keep = np.arange(a["total_frames"]) != 1
        np.testing.assert_array_equal(b["keypoint"][0, keep], a["keypoint"][0, keep])
        np.testing.assert_array_equal(b["keypoint_score"][0, keep], a["keypoint_score"][0, keep])
        assert not b["keypoint"][:, 1].any() and not b["keypoint_score"][:, 1].any()
        np.testing.assert_allclose(b["keypoint"][1, 2], a["keypoint"][0, 2] + [5, 0], rtol=1e-6)
        assert not b["keypoint_score"][1, keep & (np.arange(a["total_frames"]) != 2)].any()


def test_openpose_problems_are_named(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "f_000000000000_keypoints.json").write_text('{"people": []}')
    with pytest.raises(DataError, match="put each clip's frame files in a folder of their own"):
        read_openpose_clips(tmp_path / "flat")
    _write_frames(tmp_path / "bad" / "walk" / "clip", [[np.ones((18, 3))], [np.ones((25, 3))]])
    with pytest.raises(DataError, match="persons of \\[18, 25\\] joints"):
        read_openpose_clips(tmp_path / "bad")
    (tmp_path / "broken" / "walk" / "clip").mkdir(parents=True)
    (tmp_path / "broken" / "walk" / "clip" / "x.json").write_text('{"people": [{"pose": []}]}')
    with pytest.raises(DataError, match="not an OpenPose frame file"):
        read_openpose_clips(tmp_path / "broken")
