"""Pooling real datasets into one pre-training corpus, and finding test clips copied from training clips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations
from skeletonmae.data.check import check_file, duplicated_clips, renamed_copies
from skeletonmae.data.pool import CANVAS, pool_annotations
from skeletonmae.errors import DataError
from skeletonmae.skeleton import get_layout


def test_pool_of_2d_and_3d_sets_is_2d_and_leaves_out_the_excluded_split(tmp_path, capsys):
    penn, ucla = shared_pickle("penn_action"), shared_pickle("nw_ucla")
    out = tmp_path / "pool.pkl"
    assert main(["data", "pool", str(out), f"{penn}:penn13", f"{ucla}:kinect20",
                 "--exclude", "penn_action/test"]) == 0
    assert "pretrain.splits=[pool]" in capsys.readouterr().out
    f = load_annotations(out, layout="coco17")
    assert len(f.annotations) == 2326 + 1484
    assert len(f.samples("pool")) == 1258 + 1484  # Penn's 1068 test clips are left out
    assert not set(f.split["pool"]) & set(f.split["penn_action/test"])
    assert f.num_channels == 2

    j = {n: i for i, n in enumerate(get_layout("coco17").joints)}
    clip = f.samples("nw_ucla/xview_train")[0]
    assert clip["img_shape"] == (CANVAS, CANVAS) and clip["dataset"] == "nw_ucla"
    kp, sc = clip["keypoint"][0], clip["keypoint_score"][0]
    assert (kp[:, j["nose"], 1] < kp[:, j["left_ankle"], 1]).all()  # upright: image y points down
    assert (sc[:, j["left_eye"]] == 0).all() and (kp[:, j["left_eye"]] == 0).all()  # Kinect has no eyes
    assert (kp[sc > 0] > 0).all() and (kp[sc > 0] < CANVAS).all()


def test_projected_3d_clips_have_the_median_2d_body_size():
    annotations, split = pool_annotations([(shared_pickle("jhmdb14"), "jhmdb15"),
                                           (shared_pickle("florence3d"), "florence15")], "coco17")

    def radius(a):
        h, w = a["img_shape"]
        pts = a["keypoint"][a["keypoint_score"] > 0.01] / np.array([w / 2, h / 2])
        return np.sqrt(((pts - pts.mean(0)) ** 2).sum(-1).mean())

    r2d = np.median([radius(a) for a in annotations if a["dataset"] == "jhmdb14"])
    r3d = np.median([radius(a) for a in annotations if a["dataset"] == "florence3d"])
    assert r3d == pytest.approx(r2d, rel=0.15)
    assert len(split["pool"]) == len(annotations)


def test_pool_errors_name_the_problem(tmp_path):
    penn = shared_pickle("penn_action")
    with pytest.raises(DataError, match="no such split.*penn_action/train"):
        pool_annotations([(penn, "penn13")], "coco17", exclude=["penn_action/val"])
    assert main(["data", "pool", str(tmp_path / "p.pkl"), str(penn)]) == 2  # no :LAYOUT
    assert not (tmp_path / "p.pkl").exists()


def test_nw_ucla_has_95_test_clips_copied_from_training():
    f = load_annotations(shared_pickle("nw_ucla"), layout="kinect20")
    dups = duplicated_clips(f.samples("xview_train"), f.samples("xview_val"))
    assert len(dups) == 95
    assert {(name[:3], name[-3:]) for name in dups} == {("a02", "v03"), ("a03", "v03")}  # as its README says
    assert duplicated_clips(f.samples("xview_train")[:5], f.samples("xview_train")[:5]) == [
        s["frame_dir"] for s in f.samples("xview_train")[:5]]
    assert duplicated_clips(f.samples("xview_train"), []) == []
    copies = renamed_copies(f.annotations)
    assert len(copies) == 95 and all(c[:-3] == o[:-3] and (c[-3:], o[-3:]) == ("v03", "v02") for c, o in copies)
    report, ok = check_file(shared_pickle("nw_ucla"))
    assert ok and "note: 95 clips are bit-identical copies of another clip" in report
    assert "bit-identical" not in check_file(shared_pickle("penn_action"))[0]
