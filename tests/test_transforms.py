import numpy as np
import pytest
import torch
from conftest import DATASETS, STICK, make_sample, shared_pickle

from skeletonmae.config import load_config
from skeletonmae.data.annotations import load_annotations
from skeletonmae.data.dataset import SkeletonData, stratified_subset
from skeletonmae.data.transforms import (
    BODY_TORSO_2D,
    BODY_TORSO_3D,
    Flip,
    FormatChannels,
    Normalize2D,
    Normalize3D,
    PixelNoise,
    RandomRotateScale,
    SelectPersons,
    UniformSample,
    build_pipeline,
)
from skeletonmae.errors import ConfigError
from skeletonmae.skeleton import get_layout

RNG = np.random.default_rng(0)  # for transforms that draw nothing


def test_uniform_sample_test_mode_is_deterministic_and_spread():
    s = UniformSample(clip_len=4, num_clips=2, test_mode=True)
    idx = s.indices(40, np.random.default_rng(0))
    assert idx.shape == (2, 4)
    np.testing.assert_array_equal(idx, s.indices(40, np.random.default_rng(1)))
    # segments of 10 frames; clip k takes offset floor(10 * (k + 0.5) / 2)
    np.testing.assert_array_equal(idx, [[2, 12, 22, 32], [7, 17, 27, 37]])


def test_uniform_sample_train_stays_in_segments():
    idx = UniformSample(clip_len=5).indices(23, np.random.default_rng(0))
    bounds = np.arange(6) * 23 // 5
    assert np.all(idx[0] >= bounds[:-1]) and np.all(idx[0] < bounds[1:])


def test_short_clips_loop_or_pad():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(UniformSample(6, test_mode=True).indices(4, rng), [[0, 1, 2, 3, 0, 1]])
    np.testing.assert_array_equal(UniformSample(6, short="pad").indices(4, rng), [[0, 1, 2, 3, 3, 3]])
    assert UniformSample(6, test_mode=True).indices(1, rng).tolist() == [[0] * 6]


def test_select_persons_keeps_most_confident_and_pads():
    ann = make_sample(m=3, t=4)
    ann["keypoint_score"][1] = 1.0  # person 1 is the most confident
    ann["keypoint_score"][2] = 0.0
    out = SelectPersons(2)(ann, RNG)
    np.testing.assert_array_equal(out["keypoint"][0], ann["keypoint"][1])
    np.testing.assert_array_equal(out["keypoint"][1], ann["keypoint"][0])
    one = SelectPersons(2)(make_sample(m=1), RNG)
    assert one["keypoint"].shape[0] == 2 and np.all(one["keypoint"][1] == 0) and np.all(one["keypoint_score"][1] == 0)


def test_normalize2d_fix_mode_and_threshold():
    ann = make_sample(t=2, v=3, img_shape=(100, 200))
    ann["keypoint"][0, 0] = [[0, 0], [100, 50], [200, 100]]
    ann["keypoint_score"][0, 0] = [1, 1, 0.0]
    out = Normalize2D("fix", threshold=0.01)(ann, RNG)["keypoint"]
    np.testing.assert_allclose(out[0, 0], [[-1, -1], [0, 0], [0, 0]])  # low-score joint zeroed


def test_normalize2d_auto_keeps_aspect():
    ann = make_sample(t=1, v=2)
    ann["keypoint"][0, 0] = [[10, 10], [30, 20]]
    out = Normalize2D("auto")(ann, RNG)["keypoint"][0, 0]
    np.testing.assert_allclose(out, [[-1, -0.5], [1, 0.5]])


def test_normalize3d_is_unit_independent():
    ann = make_sample(c=3, v=15, t=6)
    a = Normalize3D(get_layout("florence15"))(ann, RNG)["keypoint"]
    ann_mm = {**ann, "keypoint": ann["keypoint"] * 1000}
    b = Normalize3D(get_layout("florence15"))(ann_mm, RNG)["keypoint"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert abs(np.sqrt((a**2).sum(-1).mean()) - 1) < 1e-4


def _torso(kp, layout):
    ls, rs, lh, rh = layout.torso()
    return np.linalg.norm((kp[..., ls, :] + kp[..., rs, :]) / 2 - (kp[..., lh, :] + kp[..., rh, :]) / 2, axis=-1)


def test_normalize2d_body_by_hand():
    coco = get_layout("coco17")
    ls, rs, lh, rh = coco.torso()
    ann = make_sample(t=3, v=17)
    ann["keypoint_score"][:] = 0
    for t, dx in enumerate([0, 200, 400]):  # a torso of 40 pixels travelling 400 pixels to the right
        ann["keypoint"][0, t, [ls, rs, lh, rh]] = [[dx + 90, 100], [dx + 110, 100], [dx + 90, 140], [dx + 110, 140]]
        ann["keypoint_score"][0, t, [ls, rs, lh, rh]] = 1
    ann["keypoint"][0, 1, 0] = [310, 60]  # the nose, one torso above the shoulders' middle in frame 1
    ann["keypoint_score"][0, 1, 0] = 1
    out = Normalize2D("body", layout=coco)(ann, RNG)["keypoint"][0]
    # centre: the mean mid-hip (300, 140); scale: 40 pixels -> BODY_TORSO_2D
    k = BODY_TORSO_2D / 40
    np.testing.assert_allclose(out[0, ls], [(90 - 300) * k, (100 - 140) * k], rtol=1e-6)
    np.testing.assert_allclose(out[1, 0], [10 * k, -80 * k], rtol=1e-6)
    np.testing.assert_allclose(_torso(out, coco), BODY_TORSO_2D, rtol=1e-6)  # in every frame
    assert (out[:, 1:5] == 0).all()  # absent joints stay zero
    ann["keypoint_score"][0, :, rh] = 0  # no frame shows the whole torso: the box of 'auto' instead
    np.testing.assert_array_equal(Normalize2D("body", layout=coco)(ann, RNG)["keypoint"],
                                  Normalize2D("auto")(ann, RNG)["keypoint"])
    with pytest.raises(ValueError, match="needs the layout"):
        Normalize2D("body")


def test_normalize3d_body_by_hand():
    kinect = get_layout("kinect20")
    ls, rs, lh, rh = kinect.torso()
    kp = np.zeros((1, 2, 20, 3), np.float32)
    kp[0, :, :] = [0.0, 0.2, 3.0]  # every joint somewhere
    for t, dz in enumerate([0.0, -4.0]):  # walking 4 m toward the camera; a torso of 0.5 m
        kp[0, t, [ls, rs, lh, rh]] = [[-0.2, 0.5, 3 + dz], [0.2, 0.5, 3 + dz], [-0.1, 0, 3 + dz], [0.1, 0, 3 + dz]]
    out = Normalize3D(kinect, "body")({"keypoint": kp}, RNG)["keypoint"][0]
    np.testing.assert_allclose(_torso(out, kinect), BODY_TORSO_3D, rtol=1e-6)
    k = BODY_TORSO_3D / 0.5  # centre: the mean mid-hip (0, 0, 1)
    np.testing.assert_allclose(out[0, ls], np.array([-0.2, 0.5, 2.0]) * k, rtol=1e-6)
    np.testing.assert_allclose(out[1, 0], np.array([0.0, 0.2, 2.0]) * k, rtol=1e-6)
    # in millimetres the same
    np.testing.assert_allclose(Normalize3D(kinect, "body")({"keypoint": kp * 1000}, RNG)["keypoint"][0], out,
                               rtol=1e-5, atol=1e-6)
    # without torso joints: the RMS default
    ann = make_sample(c=3, v=6, t=4)
    np.testing.assert_array_equal(Normalize3D(STICK, "body")(ann, RNG)["keypoint"],
                                  Normalize3D(STICK)(ann, RNG)["keypoint"])


@pytest.fixture(scope="module")
def bandai_walks():
    """Bandai-Namco clips (3D, metres, y up, z away from the camera; README): the walks, runs and dashes that
    travel more than 8 m, and the waves and raised hands that stay within 0.5 m."""
    path = shared_pickle("bandai_namco")
    names = (path.parent / "label_map.txt").read_text().split()
    assert names[:3] == ["walk", "run", "dash"] and names[18].startswith("wave") and names[23].startswith("raise")
    f = load_annotations(path, layout="kinect20")
    travelling, staying = [], []
    for a in f.annotations:
        hip = a["keypoint"][0, :, 0][:, [0, 2]]  # the hip centre on the floor plane (x, z)
        travel = np.linalg.norm(hip - hip[0], axis=-1).max()
        if a["label"] in (0, 1, 2) and travel > 8:  # walk, run, dash (README's label table)
            travelling.append(a)
        elif a["label"] >= 18 and travel < 0.5:  # wave-*, raise-up-*
            staying.append(a)
    assert len(travelling) > 300 and len(staying) > 1500
    return travelling, staying


def test_3d_body_normalisation_keeps_a_travelling_body_its_size(bandai_walks):
    travelling, staying = bandai_walks
    kinect = get_layout("kinect20")

    def torso_per_frame(anns, mode):
        return [_torso(Normalize3D(kinect, mode)(a, RNG)["keypoint"][0], kinect) for a in anns]

    body_go, body_stay = torso_per_frame(travelling, "body"), torso_per_frame(staying, "body")
    every_frame = np.concatenate(body_go + body_stay)
    # every frame within 8 % of BODY_TORSO_3D (the torso bends a little over the clavicles and the spine)
    assert np.abs(every_frame / BODY_TORSO_3D - 1).max() < 0.08
    assert np.median([np.median(t) for t in body_go]) == pytest.approx(BODY_TORSO_3D, rel=1e-4)
    rms_go, rms_stay = torso_per_frame(travelling, "rms"), torso_per_frame(staying, "rms")
    ratio = np.median(np.concatenate(rms_go)) / np.median(np.concatenate(rms_stay))
    print(f"RMS scale: torso of bodies travelling > 8 m / of bodies staying put = {ratio:.3f}; 'body': 1")
    assert ratio < 0.3  # measured 0.20: a 10 m walk makes the body a fifth of its size
    assert np.median(np.concatenate(rms_stay)) == pytest.approx(BODY_TORSO_3D, rel=0.05)  # why 0.7


def test_2d_body_normalisation_keeps_a_travelling_body_its_size(bandai_walks):
    travelling, staying = bandai_walks
    kinect = get_layout("kinect20")

    def side_view(a):  # seen from the side, 100 pixels a metre: the walk crosses the frame
        kp = a["keypoint"][..., [2, 1]] * np.float32([100, -100]) + np.float32([1200, 500])
        return {"keypoint": kp, "keypoint_score": np.ones(kp.shape[:-1], np.float32), "img_shape": (1000, 2400)}

    def torso_per_frame(anns, mode):
        return [_torso(Normalize2D(mode, layout=kinect)(side_view(a), RNG)["keypoint"][0], kinect) for a in anns]

    every_frame = np.concatenate(torso_per_frame(travelling, "body") + torso_per_frame(staying, "body"))
    assert np.abs(every_frame / BODY_TORSO_2D - 1).max() < 0.1
    auto_go, auto_stay = torso_per_frame(travelling, "auto"), torso_per_frame(staying, "auto")
    ratio = np.median(np.concatenate(auto_go)) / np.median(np.concatenate(auto_stay))
    print(f"'auto' (box) scale: torso of bodies travelling > 8 m / of bodies staying put = {ratio:.3f}")
    assert ratio < 0.25  # measured 0.17


def test_body_normalisation_through_the_config():
    with pytest.raises(ConfigError, match="'fix', 'auto', 'body'"):
        load_config(None, ["data.normalize=box"])
    for name in ("penn_action", "nw_ucla"):
        cfg = load_config(name, ["data.num_workers=0", "data.clip_len=16", "data.test_clips=2",
                                 "data.normalize=body"])
        dm = SkeletonData(cfg, batch_size=8)
        x, _, _ = next(iter(dm.train_dataloader()))
        assert x.isfinite().all() and 0.2 < x.abs().amax(dim=(1, 2, 3, 4, 5)).median() < 5


def test_pixel_noise_spares_absent_joints():
    ann = make_sample(t=3, v=4)
    ann["keypoint_score"][0, :, 0] = 0
    out = PixelNoise(2.0)(ann, np.random.default_rng(1))["keypoint"]
    np.testing.assert_array_equal(out[0, :, 0], ann["keypoint"][0, :, 0])
    assert np.abs(out - ann["keypoint"]).max() > 0.1


@pytest.mark.parametrize("c", [2, 3])
def test_rotation_preserves_lengths_without_scale(c):
    ann = make_sample(c=c, v=5)
    out = RandomRotateScale(max_deg=30)(ann, np.random.default_rng(0))["keypoint"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(ann["keypoint"], axis=-1), rtol=1e-5)
    assert not np.allclose(out, ann["keypoint"])


def test_2d_scale_stretches_each_axis_and_keeps_absent_joints_zero():
    ann = make_sample(c=2, v=5)
    ann["keypoint"][0, :, 0] = 0
    out = RandomRotateScale(scale=0.2)(ann, np.random.default_rng(0))["keypoint"]
    ratio = out[0, :, 1:] / ann["keypoint"][0, :, 1:]  # no rotation: one factor per axis, within [0.8, 1.2]
    assert np.allclose(ratio, ratio[:1, :1]) and ((ratio > 0.8) & (ratio < 1.2)).all()
    assert not np.isclose(ratio[0, 0, 0], ratio[0, 0, 1])
    np.testing.assert_array_equal(out[0, :, 0], 0)


def test_flip_mirrors_x_and_swaps_left_and_right_joints():
    kp = np.zeros((1, 1, 2, 17, 2), np.float32)  # [K, P, T, V, C] in coco17
    kp[..., 9, :] = [0.5, 0.25]  # left wrist
    kp[..., 0, :] = [0.1, -0.3]  # nose (its own twin)
    sample = {"keypoint": kp, "keypoint_score": (kp != 0).any(-1).astype(np.float32)}
    coco = get_layout("coco17")
    out = Flip(coco, p=1.0)(sample, RNG)
    np.testing.assert_array_equal(out["keypoint"][..., 10, :], [[[[-0.5, 0.25]] * 2]])  # now the right wrist
    np.testing.assert_allclose(out["keypoint"][..., 0, :], [[[[-0.1, -0.3]] * 2]])
    np.testing.assert_array_equal(out["keypoint"][..., 9, :], 0)  # absent joints stay zero
    np.testing.assert_array_equal(out["keypoint_score"][..., 10], 1)
    np.testing.assert_array_equal(Flip(coco, p=0.0)(sample, RNG)["keypoint"], kp)


def test_flip_draws_per_clip_in_training_and_appends_mirrors_at_test_time():
    coco, rng = get_layout("coco17"), np.random.default_rng(0)
    kp = rng.standard_normal((400, 1, 1, 17, 3)).astype(np.float32)
    sample = {"keypoint": kp, "keypoint_score": np.ones(kp.shape[:-1], np.float32)}
    out = Flip(coco, p=0.5)(sample, rng)["keypoint"]
    flipped = ~np.isclose(out, kp).all(axis=(1, 2, 3, 4))
    assert 150 < flipped.sum() < 250
    np.testing.assert_array_equal(Flip(coco, p=1.0)(sample, rng)["keypoint"][flipped], out[flipped])
    both = Flip(coco, both=True)(sample, rng)
    assert both["keypoint"].shape == (800, 1, 1, 17, 3) and both["keypoint_score"].shape == (800, 1, 1, 17)
    np.testing.assert_array_equal(both["keypoint"][:400], kp)
    np.testing.assert_array_equal(both["keypoint"][400:], Flip(coco, p=1.0)(sample, rng)["keypoint"])
    np.testing.assert_array_equal(both["keypoint"][400:, ..., 2], kp[..., get_layout("coco17").mirror(), 2])


def test_test_flip_doubles_the_test_clips():
    cfg = load_config("penn_action", ["data.num_workers=0", "data.clip_len=8", "data.test_clips=3",
                                      "data.test_flip=true", "data.flip=0.5"])
    x, _, _ = next(iter(SkeletonData(cfg, batch_size=12).test_dataloader()))
    assert x.shape[:2] == (2, 6)
    np.testing.assert_allclose(x[:, 3:, ..., 0], -x[:, :3][..., get_layout("coco17").mirror(), 0])


def test_format_channels_appends_score():
    ann = make_sample(t=2, v=3)
    out = FormatChannels(use_score=True)(ann, RNG)["keypoint"]
    assert out.shape == (1, 2, 3, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 2], ann["keypoint_score"])


def test_format_channels_appends_velocity_zero_where_a_joint_is_absent():
    kp = np.array([[[[1, 1], [2, 0]], [[3, 2], [0, 0]], [[4, 4], [5, 5]]]], np.float32)  # [M=1, T=3, V=2, C=2]
    ann = {"keypoint": kp, "keypoint_score": np.ones(kp.shape[:-1], np.float32)}
    out = FormatChannels(use_score=True, motion=True)(ann, RNG)["keypoint"]
    assert out.shape == (1, 3, 2, 5)
    np.testing.assert_array_equal(out[..., :2], kp)
    np.testing.assert_array_equal(out[0, :, 0, 2:4], [[2, 1], [1, 2], [0, 0]])  # x_{t+1} - x_t; last frame 0
    np.testing.assert_array_equal(out[0, :, 1, 2:4], [[0, 0], [0, 0], [0, 0]])  # joint 1 absent at t = 1
    np.testing.assert_array_equal(out[..., 4], 1)


def test_format_channels_appends_bones_zero_where_a_joint_or_its_parent_is_absent():
    kp = np.array([[[[1, 1], [2, 0], [4, 4]], [[0, 0], [2, 2], [3, 5]]]], np.float32)  # [M=1, T=2, V=3, C=2]
    ann = {"keypoint": kp, "keypoint_score": np.ones(kp.shape[:-1], np.float32)}
    out = FormatChannels(bone=True, parents=[0, 0, 1])(ann, RNG)["keypoint"]  # a chain 0 <- 1 <- 2
    assert out.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(out[0, 0, :, 2:], [[0, 0], [1, -1], [2, 4]])
    np.testing.assert_array_equal(out[0, 1, :, 2:], [[0, 0], [0, 0], [1, 3]])  # joint 0 absent at t = 1


def test_transforms_do_not_touch_the_loaded_arrays():
    ann = make_sample(m=2, t=30)
    before = ann["keypoint"].copy()
    pipe = build_pipeline(
        source_layout="coco17", target_layout="coco17", is_3d=False, clip_len=8, num_persons=2, train=True,
        pixel_noise=1.0,
    )
    pipe(ann, RNG)
    np.testing.assert_array_equal(ann["keypoint"], before)


def _augmenting_pipeline(is_3d=False, **kw):
    layout = "kinect20" if is_3d else "coco17"
    return build_pipeline(source_layout=layout, target_layout="coco17", is_3d=is_3d, clip_len=8, num_persons=2,
                          train=True, pixel_noise=1.0, rotate_deg=30, scale=0.2, flip=0.5, **kw)


@pytest.mark.parametrize("is_3d", [False, True])
def test_the_augmentation_is_a_function_of_the_generator_seed(is_3d):
    ann = make_sample(m=2, t=30, c=3 if is_3d else 2, v=20 if is_3d else 17)
    pipe = _augmenting_pipeline(is_3d)
    a = pipe(ann, np.random.default_rng(7))["keypoint"]
    b = pipe(ann, np.random.default_rng(7))["keypoint"]
    c = pipe(ann, np.random.default_rng(8))["keypoint"]
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)


def test_no_transform_touches_numpys_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()
    for is_3d in (False, True):
        ann = make_sample(m=2, t=30, c=3 if is_3d else 2, v=20 if is_3d else 17)
        for seed in range(5):
            _augmenting_pipeline(is_3d, bone=True, motion=True)(ann, np.random.default_rng(seed))
    after = np.random.get_state()
    assert before[0] == after[0] and (before[1] == after[1]).all() and before[2:] == after[2:]


def test_layouts_are_resolved_once_when_the_pipeline_is_built(monkeypatch):
    import skeletonmae.data.transforms as transforms

    pipe = build_pipeline(source_layout="kinect20", target_layout="coco17", is_3d=True, clip_len=8, num_persons=2,
                          train=True, flip=0.5, bone=True)

    def refuse(name):
        raise AssertionError(f"layout {name!r} looked up while transforming")

    monkeypatch.setattr(transforms, "get_layout", refuse)
    out = pipe(make_sample(c=3, v=20, t=12), np.random.default_rng(0))["keypoint"]
    assert out.shape == (1, 2, 8, 17, 6)


def test_dataset_reads_depend_only_on_the_key(small_pickle):
    from skeletonmae.data.dataset import EpochShuffle, SkeletonDataset

    samples = load_annotations(small_pickle).samples("train")
    ds = SkeletonDataset(samples, _augmenting_pipeline())
    keys = list(EpochShuffle(len(ds), seed=3))
    first = {k: ds[k][0] for k in keys}
    for k in reversed(keys):  # another order (another worker, a resumed run): the same clips
        torch.testing.assert_close(ds[k][0], first[k], rtol=0, atol=0)
    i, seed = keys[0]
    assert not torch.equal(ds[(i, seed + 1)][0], first[keys[0]])
    torch.testing.assert_close(ds[i][0], ds[i][0], rtol=0, atol=0)  # a bare index: a fixed Generator


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_real_dataset_reaches_batches(name):
    layout, train, test = DATASETS[name]
    path = shared_pickle(name)
    c = 3 if name in ("nw_ucla", "utkinect", "florence3d") else 2
    cfg = load_config(
        None,
        [f"data.path={path}", f"data.layout={layout}", f"data.train_split={train}", f"data.test_split={test}",
         "data.num_workers=0", "data.clip_len=16", "data.test_clips=3", "encoder.layout=coco17"],
    )
    dm = SkeletonData(cfg, batch_size=12)
    x, label, index = next(iter(dm.train_dataloader()))
    assert x.shape == (12, 1, 2, 16, 17, c) and x.dtype.is_floating_point
    assert x.isfinite().all() and x.abs().max() < 50
    assert label.shape == (12,) and (label >= 0).all() and (label < dm.num_classes).all()
    x, label, index = next(iter(dm.test_dataloader()))
    assert x.shape[1:] == (3, 2, 16, 17, c)
    assert index.tolist() == list(range(len(index)))


def test_motion_channels_reach_the_batches_and_in_channels():
    cfg = load_config("penn_action", ["data.num_workers=0", "data.clip_len=16", "data.motion=true",
                                      "data.use_score=true"])
    dm = SkeletonData(cfg, batch_size=4)
    x, _, _ = next(iter(dm.train_dataloader()))
    assert x.shape[-1] == dm.in_channels == 5  # (x, y), their velocity, the score
    both = x[..., :-1, :, :2].ne(0).any(-1) & x[..., 1:, :, :2].ne(0).any(-1)  # present in frames t and t+1
    assert torch.allclose(x[..., :-1, :, 2:4][both], (x[..., 1:, :, :2] - x[..., :-1, :, :2])[both], atol=1e-6)
    cfg = load_config("penn_action", ["data.num_workers=0", "data.clip_len=16", "data.motion=true", "data.bone=true"])
    dm = SkeletonData(cfg, batch_size=4)
    x, _, _ = next(iter(dm.train_dataloader()))
    assert x.shape[-1] == dm.in_channels == 6  # (x, y), velocity, bone
    left_wrist, left_elbow = 9, 7
    both = x[..., left_wrist, :2].ne(0).any(-1) & x[..., left_elbow, :2].ne(0).any(-1)
    assert both.any()
    assert torch.allclose(x[..., left_wrist, 4:6][both], (x[..., left_wrist, :2] - x[..., left_elbow, :2])[both])


def test_stratified_subset_counts():
    samples = [{"label": i % 3} for i in range(30)]
    sub = stratified_subset(samples, fraction=0.2, seed=0)
    assert sorted(s["label"] for s in sub) == [0, 0, 1, 1, 2, 2]
    assert stratified_subset(samples, fraction=0.2, seed=0) == sub
    assert len(stratified_subset(samples, per_class=4)) == 12
    assert stratified_subset(samples) is samples


def test_penn_labels_fraction_is_stratified():
    f = load_annotations(shared_pickle("penn_action"), layout="penn13")
    sub = stratified_subset(f.samples("train"), fraction=0.1, seed=3)
    assert len({s["label"] for s in sub}) == 15 and 110 < len(sub) < 140
