"""The embedded synthetic demo set: format, determinism, splits, plausibility and separability."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skeletonmae.data.annotations import check_annotations, load_annotations
from skeletonmae.data.synthetic import (
    ARM_CLASSES,
    DEMO_CLASSES,
    LEG_CLASSES,
    TWO_PERSON_CLASSES,
    make_demo_annotations,
    write_demo_pickle,
)
from skeletonmae.skeleton import get_layout

J = {name: i for i, name in enumerate(get_layout("coco17").joints)}
ARMS = [J[f"{s}_{j}"] for s in ("left", "right") for j in ("elbow", "wrist")]
LEGS = [J[f"{s}_{j}"] for s in ("left", "right") for j in ("knee", "ankle")]


@pytest.fixture(scope="module")
def data():
    return make_demo_annotations(num_per_class=40, seed=0)


def _by_class(data, names):
    labels = {DEMO_CLASSES.index(n) for n in names}
    return [a for a in data["annotations"] if a["label"] in labels]


def _same(a: dict, b: dict) -> bool:
    if a["split"] != b["split"] or len(a["annotations"]) != len(b["annotations"]):
        return False
    for x, y in zip(a["annotations"], b["annotations"], strict=True):
        if x.keys() != y.keys() or x["keypoint"].shape != y["keypoint"].shape:
            return False
        if not all(np.array_equal(x[k], y[k]) for k in x):
            return False
    return True


def test_deterministic_by_seed():
    a, b, c = (make_demo_annotations(3, seed=s) for s in (5, 5, 6))
    assert _same(a, b)
    assert not _same(a, c)


def test_clip_does_not_depend_on_clip_count(data):
    small = make_demo_annotations(2, seed=0)
    for ann in small["annotations"]:
        i = int(ann["frame_dir"][5:]) % 2
        twin = _by_class(data, [DEMO_CLASSES[ann["label"]]])[i]
        assert np.array_equal(ann["keypoint"], twin["keypoint"])


def test_format(data):
    anns = data["annotations"]
    assert len(DEMO_CLASSES) >= 8 and len(anns) == 40 * len(DEMO_CLASSES)
    assert check_annotations(data, layout="coco17", num_classes=len(DEMO_CLASSES)) == []
    assert len({a["frame_dir"] for a in anns}) == len(anns)
    for a in anns:
        assert set(a) == {"frame_dir", "label", "total_frames", "img_shape", "original_shape", "keypoint",
                          "keypoint_score"}
        assert isinstance(a["frame_dir"], str) and a["frame_dir"].startswith("demo_")
        assert type(a["label"]) is int and type(a["total_frames"]) is int
        assert a["img_shape"] == a["original_shape"] == (480, 640)
        assert all(type(s) is int for s in a["img_shape"])
        m = 2 if DEMO_CLASSES[a["label"]] in TWO_PERSON_CLASSES else 1
        assert a["keypoint"].dtype == np.float32 and a["keypoint_score"].dtype == np.float32
        assert a["keypoint"].shape == (m, a["total_frames"], 17, 2)
        assert a["keypoint_score"].shape == (m, a["total_frames"], 17)
        assert 30 <= a["total_frames"] <= 90
    assert len({a["total_frames"] for a in anns}) > 20  # lengths vary


def test_class_groups():
    assert set(ARM_CLASSES) | set(LEG_CLASSES) | set(TWO_PERSON_CLASSES) == set(DEMO_CLASSES)
    assert len(ARM_CLASSES) >= 3 and len(LEG_CLASSES) >= 3 and len(TWO_PERSON_CLASSES) >= 2


def test_split_is_stratified(data):
    train, test = data["split"]["train"], data["split"]["test"]
    assert not set(train) & set(test)
    assert set(train) | set(test) == {a["frame_dir"] for a in data["annotations"]}
    label = {a["frame_dir"]: a["label"] for a in data["annotations"]}
    for c in range(len(DEMO_CLASSES)):
        assert sum(label[n] == c for n in test) == 10
        assert sum(label[n] == c for n in train) == 30
    tiny = make_demo_annotations(2, seed=3)
    for split in ("train", "test"):
        assert len(tiny["split"][split]) == len(DEMO_CLASSES)
    with pytest.raises(ValueError):
        make_demo_annotations(0)


def test_coordinates_inside_image(data):
    kp = np.concatenate([a["keypoint"].reshape(-1, 2) for a in data["annotations"]])
    score = np.concatenate([a["keypoint_score"].ravel() for a in data["annotations"]])
    x, y = kp[score > 0].T
    inside = (x >= 0) & (x < 640) & (y >= 0) & (y < 480)
    assert inside.mean() > 0.99
    assert np.ptp(x) > 300 and np.ptp(y) > 200  # persons appear at varied places


def test_dropped_joints_and_scores(data):
    score = np.concatenate([a["keypoint_score"].ravel() for a in data["annotations"]])
    kp = np.concatenate([a["keypoint"].reshape(-1, 2) for a in data["annotations"]])
    dropped = score == 0
    assert 0.005 < dropped.mean() < 0.1
    assert np.all(kp[dropped] == 0)
    assert np.all(np.abs(kp[~dropped]).sum(1) > 0)
    assert score[~dropped].min() >= 0.6 and score.max() <= 1.0


def _upright(data):
    """Single-person arm classes and the handshake: people stand upright throughout."""
    return [p for a in _by_class(data, (*ARM_CLASSES, "handshake")) for p in a["keypoint"]], [
        s for a in _by_class(data, (*ARM_CLASSES, "handshake")) for s in a["keypoint_score"]
    ]


def test_looks_like_a_standing_person(data):
    kps, scores = _upright(data)
    kp, ok = np.concatenate(kps), np.concatenate(scores) > 0  # [N, 17, 2], [N, 17]; image y grows down
    y = kp[..., 1]
    hips, shoulders, ankles = [J["left_hip"], J["right_hip"]], [J["left_shoulder"], J["right_shoulder"]], [
        J["left_ankle"], J["right_ankle"]]
    full = ok[:, [J["nose"], *hips, *shoulders, *ankles]].all(1)
    nose, hip, shoulder = y[full, J["nose"]], y[full][:, hips].mean(1), y[full][:, shoulders].mean(1)
    assert np.mean((nose < shoulder) & (shoulder < hip)) > 0.99
    others = np.where(ok, y, -np.inf)
    others[:, ankles] = -np.inf
    assert np.mean(y[full][:, ankles].max(1) >= others[full].max(1)) > 0.99  # an ankle is lowest
    # bones have plausible proportions: shank about as long as the thigh
    for s in ("left", "right"):
        good = ok[:, [J[f"{s}_hip"], J[f"{s}_knee"], J[f"{s}_ankle"]]].all(1)
        thigh = np.linalg.norm(kp[good, J[f"{s}_hip"]] - kp[good, J[f"{s}_knee"]], axis=-1)
        shank = np.linalg.norm(kp[good, J[f"{s}_knee"]] - kp[good, J[f"{s}_ankle"]], axis=-1)
        assert 0.7 < np.median(shank / thigh) < 1.4


def test_left_and_right_are_not_mirrored(data):
    """Single persons face the camera: their left shoulder is mostly on the image's right."""
    kp = np.concatenate([a["keypoint"][0] for a in _by_class(data, ARM_CLASSES + LEG_CLASSES)])
    ok = np.concatenate([a["keypoint_score"][0] for a in _by_class(data, ARM_CLASSES + LEG_CLASSES)]) > 0
    both = ok[:, J["left_shoulder"]] & ok[:, J["right_shoulder"]]
    assert np.mean(kp[both, J["left_shoulder"], 0] > kp[both, J["right_shoulder"], 0]) > 0.85
    # the waving hand is the raised one: above the shoulders in most frames of the clip's second half
    for name, hand in (("wave_left_hand", "left_wrist"), ("wave_right_hand", "right_wrist")):
        raised = []
        for a in _by_class(data, [name]):
            half = a["total_frames"] // 2
            k, s = a["keypoint"][0, half:], a["keypoint_score"][0, half:] > 0
            good = s[:, J[hand]] & s[:, J["nose"]]
            raised.append(np.mean(k[good, J[hand], 1] < k[good, J["nose"], 1] + 20))
        assert np.median(raised) > 0.8


def test_two_persons_interact(data):
    for a in data["annotations"]:
        assert a["keypoint"].shape[0] == (2 if DEMO_CLASSES[a["label"]] in TWO_PERSON_CLASSES else 1)
    near = []
    for a in _by_class(data, ["handshake"]):
        k, s = a["keypoint"][:, -1], a["keypoint_score"][:, -1]
        if (s[:, [J["right_wrist"], J["nose"], J["left_ankle"]]] > 0).all():
            height = np.abs(k[:, J["left_ankle"], 1] - k[:, J["nose"], 1]).mean()
            near.append(np.linalg.norm(k[0, J["right_wrist"]] - k[1, J["right_wrist"]]) < 0.25 * height)
    assert np.mean(near) > 0.8  # the right hands meet at the end of a handshake


def _features(ann, joints):
    """Per-joint mean and std over time of person 0's coordinates, centred on the hips and scaled by
    the torso; dropped joints are left out."""
    kp, ok = ann["keypoint"][0].astype(np.float64), ann["keypoint_score"][0] > 0
    hips, shoulders = kp[:, 11:13][ok[:, 11:13]], kp[:, 5:7][ok[:, 5:7]]
    x = (kp - hips.mean(0)) / (hips[:, 1].mean() - shoulders[:, 1].mean())
    w = ok[..., None].astype(np.float64)
    n = np.maximum(w.sum(0), 1)
    mean = (x * w).sum(0) / n
    std = np.sqrt(((x - mean) ** 2 * w).sum(0) / n)
    return np.concatenate([mean[joints], std[joints]]).ravel()


def _cv_accuracy(data, classes, drop=(), centroid=False):
    """4-fold cross-validated accuracy of a logistic regression (or a nearest-centroid classifier) on
    :func:`_features` of the clips of ``classes``, leaving out the joints ``drop``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    joints = [j for j in range(17) if j not in drop]
    anns = _by_class(data, classes)
    x = np.stack([_features(a, joints) for a in anns])
    y = np.array([a["label"] for a in anns])
    model = NearestCentroid() if centroid else LogisticRegression(max_iter=1000)
    clf = make_pipeline(StandardScaler(), model)
    with threadpool_limits(1):  # tiny problems: threads only cost time on a shared machine
        return cross_val_score(clf, x, y, cv=StratifiedKFold(4, shuffle=True, random_state=0)).mean()


def test_classes_are_separable_with_the_right_joints(data):
    """Simple per-joint statistics tell the classes apart well above chance, but only from the body
    region that moves: without arm joints the arm classes are near chance, and kicking left and
    right is much harder without the leg joints."""
    pytest.importorskip("sklearn")
    assert _cv_accuracy(data, DEMO_CLASSES, centroid=True) > 0.6  # chance: 1 / 11
    assert _cv_accuracy(data, ARM_CLASSES) > 0.8
    assert _cv_accuracy(data, ARM_CLASSES, drop=ARMS) < 0.45  # chance: 0.25
    kicks = ("kick_left", "kick_right")
    with_legs = _cv_accuracy(data, kicks)
    assert with_legs > 0.8
    assert _cv_accuracy(data, kicks, drop=LEGS) < with_legs - 0.2  # chance: 0.5


def test_write_demo_pickle(tmp_path):
    path = write_demo_pickle(tmp_path / "new" / "dir" / "demo.pkl", num_per_class=2, seed=1)
    assert path == tmp_path / "new" / "dir" / "demo.pkl" and path.is_file()
    assert path.read_bytes()[:2] == b"\x80\x04"  # pickle protocol 4
    assert (path.parent / "label_map.txt").read_text().splitlines() == list(DEMO_CLASSES)
    loaded = load_annotations(path, layout="coco17", num_classes=len(DEMO_CLASSES))  # safe unpickler
    assert len(loaded.samples("train")) == len(loaded.samples("test")) == len(DEMO_CLASSES)
    with open(path, "rb") as f:
        assert _same(pickle.load(f), make_demo_annotations(2, seed=1))
