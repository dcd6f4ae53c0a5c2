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


def _pool(tmp_path, name, *args):
    out = tmp_path / name
    assert main(["data", "pool", str(out), *map(str, args)]) == 0
    return load_annotations(out, layout="coco17")


def test_pool_with_virtual_camera_views_through_the_cli(tmp_path, small_pickle):
    from skeletonmae.config import load_config
    from skeletonmae.data.dataset import SkeletonData

    ut, fl = shared_pickle("utkinect"), shared_pickle("florence3d")
    sources = [f"{small_pickle}:coco17", f"{ut}:kinect20", f"{fl}:florence15"]
    f = _pool(tmp_path, "views.pkl", *sources, "--views", 2, "--seed", 3, "--exclude", "utkinect/xsub_val")
    src_2d, src_ut = load_annotations(small_pickle), load_annotations(ut, layout="kinect20")
    n_ut, n_fl = len(src_ut.annotations), 215
    assert len(f.annotations) == 12 + 2 * (n_ut + n_fl) and f.num_channels == 2

    # view k of clip c is <dataset>/<frame_dir>/view<k>, in every split of the clip and in 'pool'
    val = src_ut.split["xsub_val"]
    assert f.split["utkinect/xsub_val"] == [f"utkinect/{n}/view{k}" for n in val for k in (0, 1)]
    assert f.split["small/train"] == [f"small/{n}" for n in src_2d.split["train"]]
    pool = set(f.split["pool"])
    assert len(pool) == 12 + 2 * (n_ut - len(val)) + 2 * n_fl and not pool & set(f.split["utkinect/xsub_val"])
    assert all(f"florence3d/{a['frame_dir']}/view{k}" in pool for a in load_annotations(fl).annotations
               for k in (0, 1))

    j = {n: i for i, n in enumerate(get_layout("coco17").joints)}
    name = src_ut.split["xsub_train"][0]
    v0, v1 = (f.samples("utkinect/xsub_train")[k] for k in (0, 1))
    assert (v0["frame_dir"], v1["frame_dir"]) == (f"utkinect/{name}/view0", f"utkinect/{name}/view1")
    for clip in (v0, v1):
        kp, sc = clip["keypoint"][0], clip["keypoint_score"][0]
        assert clip["img_shape"] == (480, 640) and kp.dtype == np.float32 and sc.dtype == np.float32
        seen = sc > 0
        assert ((sc[seen] >= 0.6) & (sc[seen] <= 1)).all() and (kp[~seen] == 0).all()
        assert ((kp[seen] >= 0) & (kp[seen] <= [640, 480])).all()
        assert (sc[:, j["left_eye"]] == 0).all()  # Kinect has no eyes
        both = seen[:, j["nose"]] & seen[:, j["left_ankle"]]
        assert (kp[both, j["nose"], 1] < kp[both, j["left_ankle"], 1]).mean() > 0.95  # upright
    assert not np.allclose(v0["keypoint"], v1["keypoint"], atol=5)
    small = f.samples("small/train")[0]  # 2D clips are only renamed
    np.testing.assert_array_equal(small["keypoint"], src_2d.samples("train")[0]["keypoint"])

    # the seed decides the cameras: the same seed the same pool, another seed other views of the 3D clips
    again = _pool(tmp_path, "again.pkl", *sources, "--views", 2, "--seed", 3, "--exclude", "utkinect/xsub_val")
    other = _pool(tmp_path, "other.pkl", *sources, "--views", 2, "--seed", 4, "--exclude", "utkinect/xsub_val")
    for a, b, c in zip(f.annotations, again.annotations, other.annotations, strict=True):
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])
        assert a["frame_dir"] == c["frame_dir"] and (a["dataset"] == "small") == np.array_equal(a["keypoint"],
                                                                                              c["keypoint"])

    # and the 2D pre-training pipeline reads it
    cfg = load_config(None, [f"data.path={tmp_path / 'views.pkl'}", "data.layout=coco17", "data.train_split=pool",
                             "data.num_workers=0", "data.clip_len=16", "data.normalize=body"])
    x, _, _ = next(iter(SkeletonData(cfg, batch_size=16, labelled=False).train_dataloader()))
    assert x.shape == (16, 1, 2, 16, 17, 2) and x.isfinite().all()


def test_views_make_a_pool_of_3d_sets_2d_and_bad_options_are_refused(tmp_path, capsys):
    ut = shared_pickle("utkinect")
    f = _pool(tmp_path, "ut.pkl", f"{ut}:kinect20", "--views", 1)
    assert f.num_channels == 2 and len(f.annotations) == 199
    assert f.annotations[0]["frame_dir"].endswith("/view0")
    assert _pool(tmp_path, "ut3d.pkl", f"{ut}:kinect20").num_channels == 3  # without --views a 3D pool stays 3D
    capsys.readouterr()
    for bad, message in ((["--views", "0"], "--views 0: give the number of camera views"),
                         (["--seed", "1"], "--seed draws the virtual cameras of --views")):
        assert main(["data", "pool", str(tmp_path / "bad.pkl"), f"{ut}:kinect20", *bad]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad.pkl").exists()
    with pytest.raises(DataError, match="views must be at least 1"):
        pool_annotations([(ut, "kinect20")], "coco17", views=0)
