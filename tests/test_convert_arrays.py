"""`data convert arrays`: real clips written out as plain arrays come back as a pickle that passes `data check`."""

import csv

import numpy as np
import pytest
import torch
import yaml
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.config import load_config
from skeletonmae.data.annotations import load_annotations, read_label_map
from skeletonmae.data.arrays import class_names, convert_arrays
from skeletonmae.data.dataset import SkeletonData
from skeletonmae.errors import DataError
from skeletonmae.skeleton import layout_yaml


def _write_csv(path, rows):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_class_folders_of_3d_npy_files_with_a_layout_file(tmp_path, capsys):
    f = load_annotations(shared_pickle("utkinect"))
    names = read_label_map(shared_pickle("utkinect").parent / "label_map.txt")
    for a in f.annotations:  # [T, V, 3], one person, in a folder named after the class
        (tmp_path / "clips" / names[a["label"]]).mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "clips" / names[a["label"]] / f"{a['frame_dir']}.npy", a["keypoint"][0])
    spec = yaml.safe_load(layout_yaml("kinect20"))
    spec["name"] = "my_kinect"
    layout = tmp_path / "my_kinect.yaml"
    layout.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out" / "utk.pkl"
    assert main(["data", "convert", "arrays", str(tmp_path / "clips"), str(out), "--layout", str(layout)]) == 0
    assert main(["data", "check", str(out), "--layout", str(layout)]) == 0
    assert "result: OK, usable" in capsys.readouterr().out

    converted = load_annotations(out, layout=str(layout))
    new_names = read_label_map(out.parent / "label_map.txt", converted.num_classes)
    assert new_names == sorted(names)
    by_name = {a["frame_dir"].split("/")[-1]: a for a in converted.annotations}
    for a in f.annotations:
        b = by_name[a["frame_dir"]]
        np.testing.assert_array_equal(b["keypoint"], a["keypoint"])
        assert new_names[b["label"]] == names[a["label"]] and b["frame_dir"] == f"{names[a['label']]}/{a['frame_dir']}"
    labels = np.array([a["label"] for a in converted.annotations])
    test = {n for n in converted.split["test"]}
    assert len(test) + len(converted.split["train"]) == len(f.annotations)
    for k in range(len(names)):  # a fifth of every class is in 'test'
        members = [a["frame_dir"] for a in converted.annotations if a["label"] == k]
        assert sum(n in test for n in members) == round(len(members) * 0.2)
    assert len(np.unique(labels)) == len(names)

    # the generic 3D config reads it in the layout file, mapped by joint name to its encoder's kinect20
    batches = []
    for data_layout in (str(layout), "kinect20"):
        cfg = load_config("generic_3d", [f"data.path={out}", f"data.layout={data_layout}", "data.num_workers=0"])
        batches.append(next(iter(SkeletonData(cfg, batch_size=4).test_dataloader()))[0])
    assert batches[0].shape == (2, 2, 1, 32, 20, 6)  # 4 // test_clips samples, K = 2 clips, M, T, V, (x, y, z) + motion
    torch.testing.assert_close(batches[0], batches[1])


def test_2d_npz_with_scores_labels_and_splits_from_a_csv(tmp_path):
    f = load_annotations(shared_pickle("penn_action"))
    anns = f.annotations[:120]
    (tmp_path / "clips").mkdir()
    for a in anns:  # (x, y, score) as a pose estimator writes it
        clip = np.concatenate([a["keypoint"][0], a["keypoint_score"][0][..., None]], axis=-1)
        np.savez(tmp_path / "clips" / f"{a['frame_dir']}.npz", keypoint=clip)
    split = {n: s for s, members in f.split.items() for n in members}
    labels = _write_csv(tmp_path / "labels.csv", [["clip", "label", "split"]]
                        + [[a["frame_dir"], a["label"], split[a["frame_dir"]]] for a in anns])
    out, label_map = convert_arrays(tmp_path / "clips", tmp_path / "penn.pkl", labels, "penn13", score_channel=True,
                                    img_shape=(480, 640))
    converted = load_annotations(out, layout="penn13")
    assert {n: s for s, members in converted.split.items() for n in members} == {a["frame_dir"]: split[a["frame_dir"]]
                                                                                 for a in anns}
    numbers = class_names([str(a["label"]) for a in anns])  # numeric labels keep their order
    assert numbers == sorted(numbers, key=int) and label_map.read_text().split() == numbers
    for a, b in zip(anns, converted.annotations, strict=True):
        np.testing.assert_array_equal(b["keypoint"], a["keypoint"])
        np.testing.assert_array_equal(b["keypoint_score"], a["keypoint_score"])
        assert numbers[b["label"]] == str(a["label"]) and b["img_shape"] == (480, 640)


def test_one_stacked_array_with_missing_joints(tmp_path):
    rng = np.random.default_rng(0)
    stacked = rng.normal(size=(6, 2, 10, 4, 3)).astype(np.float32)  # [N, M, T, V, C]
    stacked[0, 1, 3, 2] = np.nan
    np.save(tmp_path / "all.npy", stacked)
    labels = _write_csv(tmp_path / "labels.csv", [["clip", "label"]] + [[i, "ab"[i % 2]] for i in range(6)])
    out, _ = convert_arrays(tmp_path / "all.npy", tmp_path / "all.pkl", labels, test_fraction=0.5, seed=1)
    converted = load_annotations(out)
    assert [a["frame_dir"] for a in converted.annotations] == ["0", "1", "2", "3", "4", "5"]
    assert [a["label"] for a in converted.annotations] == [0, 1, 0, 1, 0, 1]
    kp = converted.annotations[0]["keypoint"]
    assert kp.shape == (2, 10, 4, 3) and (kp[1, 3, 2] == 0).all() and np.isfinite(kp).all()
    np.testing.assert_array_equal(converted.annotations[1]["keypoint"], stacked[1])
    assert len(converted.split["test"]) == 4 and len(converted.split["train"]) == 2  # round(3 * 0.5) = 2 per class


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: _write_csv(d / "labels.csv", [["clip", "label"], ["0", "a"]]), "no label for clip '1'"),
    (lambda d: _write_csv(d / "labels.csv", [["clip", "label"], ["0", "a"], ["1", "b"], ["7", "b"]]),
     "clip '7' is not among the arrays"),
    (lambda d: _write_csv(d / "labels.csv", [["name", "class"], ["0", "a"], ["1", "b"]]),
     "needs a header row with the columns clip,label"),
    (lambda d: _write_csv(d / "labels.csv", [["clip", "label"], ["0", "a"], ["0", "b"]]), "'0' is listed twice"),
])
def test_label_csv_problems_are_named(setup, message, tmp_path):
    np.save(tmp_path / "all.npy", np.ones((2, 5, 4, 3), np.float32))
    with pytest.raises(DataError, match=message):
        convert_arrays(tmp_path / "all.npy", tmp_path / "out.pkl", setup(tmp_path))


def test_2d_without_a_frame_size_or_score_without_its_channel_is_refused(tmp_path):
    np.save(tmp_path / "all.npy", np.ones((2, 5, 4, 2), np.float32))
    labels = _write_csv(tmp_path / "labels.csv", [["clip", "label"], ["0", "a"], ["1", "b"]])
    with pytest.raises(DataError, match="give --img-shape HEIGHT WIDTH"):
        convert_arrays(tmp_path / "all.npy", tmp_path / "out.pkl", labels)
    with pytest.raises(DataError, match="with a score channel it needs 3"):
        convert_arrays(tmp_path / "all.npy", tmp_path / "out.pkl", labels, score_channel=True, img_shape=(1, 1))


def test_clips_outside_class_folders_need_a_csv_and_outputs_never_land_in_the_input(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    np.save(tmp_path / "clips" / "c0.npy", np.ones((5, 4, 3), np.float32))
    with pytest.raises(DataError, match="'c0' sits in no class folder"):
        convert_arrays(tmp_path / "clips", tmp_path / "out.pkl")
    assert main(["data", "convert", "arrays", str(tmp_path / "clips"), str(tmp_path / "clips" / "o.pkl")]) == 2
    assert "lies inside the input" in capsys.readouterr().err


def test_joints_that_do_not_fit_the_layout_are_refused(tmp_path):
    f = load_annotations(shared_pickle("utkinect"))
    order = np.random.default_rng(0).permutation(20)
    stacked = np.stack([a["keypoint"][0, :20, order] for a in f.annotations if a["total_frames"] >= 20])
    np.save(tmp_path / "all.npy", stacked.transpose(0, 2, 1, 3))  # [N, T, V, C]
    labels = _write_csv(tmp_path / "labels.csv", [["clip", "label"]] + [[i, i % 3] for i in range(len(stacked))])
    with pytest.raises(DataError, match="do not fit layout kinect20"):
        convert_arrays(tmp_path / "all.npy", tmp_path / "out.pkl", labels, "kinect20")
    assert not (tmp_path / "out.pkl").exists()
