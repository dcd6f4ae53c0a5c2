import numpy as np
import torch
from conftest import shared_pickle

from skeletonmae.config import load_config
from skeletonmae.data.dataset import SkeletonData
from skeletonmae.skeleton import get_layout
from skeletonmae.tasks.probe import coordinate_features, extract_features, linear_probe


def test_coordinate_features_by_hand():
    x = torch.tensor([0.0, 1.0, 3.0]).reshape(1, 1, 3, 1, 1)
    assert coordinate_features(x).flatten().tolist() == [0.0, 1.0, 1.0, 2.0, 3.0, 0.0]  # (coord, velocity) per frame


def test_baseline_features_ignore_motion_channels_on_real_clips():
    path = shared_pickle("penn_action")
    feats = {}
    for motion in (False, True):
        cfg = load_config("penn_action", [f"data.path={path}", f"data.motion={motion}", "data.clip_len=16"])
        dm = SkeletonData(cfg, 8)
        feats[motion] = extract_features(dm.train_samples()[::30][:40], dm, None)
    assert feats[True][0].shape == (40, 17 * 2 * 4)  # per joint: mean and std of x, y, vx, vy
    np.testing.assert_array_equal(feats[True][0], feats[False][0])
    np.testing.assert_array_equal(feats[True][1], feats[False][1])
    metrics = linear_probe(feats[True], feats[True])  # fit and score on the same 40 clips: it must fit them
    assert metrics["top1"] > 0.9 and metrics["train_clips"] == 40


def test_mirror_clip_features_and_averaged_views_on_real_clips():
    path = shared_pickle("penn_action")
    cfg = load_config("penn_action", [f"data.path={path}", "data.clip_len=16", "data.test_clips=2",
                                      "data.test_flip=true"])
    dm = SkeletonData(cfg, 8)
    samples = dm.train_samples()[::30][:40]
    (x, y), (xm, ym) = (extract_features(samples, dm, None, clip=c) for c in (0, 2))  # clip 2 mirrors clip 0
    np.testing.assert_array_equal(y, ym)
    # per joint: means of (x, y, vx, vy), then their stds; the mirror negates the x means and swaps left / right
    stats, mirrored = x.reshape(40, 17, 8), xm.reshape(40, 17, 8)[:, get_layout("coco17").mirror()]
    np.testing.assert_allclose(mirrored * [-1, 1, -1, 1, 1, 1, 1, 1], stats, atol=1e-5)
    plain = linear_probe((x, y), (x, y))
    assert linear_probe((x, y), ([x, x], y)) == plain  # a view repeated averages to itself
    assert linear_probe((x, y), ([xm], y))["top1"] < 0.9  # the mirror images are new clips to the fit
