"""`data check --layout X` checks that the joints fit the layout, on the real data sets: in their own order they
pass; shuffled, with two joints swapped, or checked against another layout of as many joints they are flagged."""

import numpy as np
import pytest
from conftest import DATASETS, shared_pickle

from skeletonmae.cli import main
from skeletonmae.data.annotations import load_annotations, save_annotations
from skeletonmae.data.fit import MAX_BONE_LENGTH, fit_problems, measure_fit
from skeletonmae.skeleton import get_layout


def _reordered(name: str, order: np.ndarray) -> list[dict]:
    out = []
    for a in load_annotations(shared_pickle(name)).annotations:
        b = {**a, "keypoint": a["keypoint"][:, :, order]}
        if "keypoint_score" in a:
            b["keypoint_score"] = a["keypoint_score"][:, :, order]
        out.append(b)
    return out


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_real_data_fit_their_layout(name):
    layout = get_layout(DATASETS[name][0])
    fit = measure_fit(load_annotations(shared_pickle(name)).annotations, layout)
    assert fit.bone_length < MAX_BONE_LENGTH and not fit.long_bones
    assert fit.upright is None or fit.upright > 0.8  # 2D: the head above the hips in most frames
    assert fit.problems() == []


@pytest.mark.parametrize("name", ["utkinect", "nw_ucla"])
def test_kinect_data_with_joints_in_another_order_are_flagged_by_data_check(name, tmp_path, capsys):
    path = shared_pickle(name)
    assert main(["data", "check", str(path), "--layout", "kinect20"]) == 0
    assert "result: OK, usable" in capsys.readouterr().out
    f = load_annotations(path)
    for order in (np.random.default_rng(0).permutation(20), np.arange(20)[::-1]):
        shuffled = save_annotations(tmp_path / "shuffled.pkl", _reordered(name, order), f.split)
        assert main(["data", "check", str(shuffled), "--layout", "kinect20"]) == 1
        out = capsys.readouterr().out
        assert "the data do not fit layout kinect20: " in out and "join distant joints" in out
        assert "no known layout with V = 20 joints fits either" in out and "NOT usable" in out


def test_head_and_hip_swapped_is_flagged_by_the_bone_and_the_upright_test():
    layout = get_layout("penn13")
    order = np.arange(13)
    order[[0, 7]] = order[[7, 0]]  # head <-> left_hip
    fit = measure_fit(_reordered("penn_action", order), layout)
    assert fit.bone_length < MAX_BONE_LENGTH  # most bones are untouched ...
    assert "left_hip-left_knee" in fit.long_bones and fit.upright < 0.3  # ... but the hip's leg and the head are not
    assert len(fit.problems()) == 2


@pytest.mark.parametrize(("name", "wrong", "right"), [("jhmdb14", "florence15", "jhmdb15"),
                                                       ("florence3d", "jhmdb15", "florence15")])
def test_the_known_layout_that_fits_is_named(name, wrong, right):
    (problem,) = fit_problems(load_annotations(shared_pickle(name)).annotations, get_layout(wrong))
    assert problem.startswith(f"the data do not fit layout {wrong}")
    assert f"the data fit layout {right} " in problem
