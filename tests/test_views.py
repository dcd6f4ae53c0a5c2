"""Virtual camera views of 3D clips (skeletonmae.data.views): geometry, determinism, pose-estimator output."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_pickle

from skeletonmae.data.annotations import load_annotations
from skeletonmae.data.views import (
    BODY_M,
    DROP,
    IMAGE_H,
    IMAGE_W,
    NEAR_M,
    NOISE_PX,
    RMS_PER_TORSO,
    TORSO_M,
    Camera,
    draw_camera,
    project_views,
    to_world,
    view,
)
from skeletonmae.skeleton import get_layout

KINECT = get_layout("kinect20")
J = {n: i for i, n in enumerate(KINECT.joints)}

# A person standing 3 m in front of a Kinect, facing it, in Kinect camera space (metres; x toward the
# camera's left, i.e. the subject's right; y up; z away from the camera): the subject's left has the smaller x.
_LEFT = {"shoulder": (-0.18, 0.42), "elbow": (-0.22, 0.15), "wrist": (-0.24, -0.1), "hand": (-0.25, -0.17),
         "hip": (-0.1, -0.02), "knee": (-0.1, -0.45), "ankle": (-0.1, -0.85), "foot": (-0.1, -0.9)}


def standing(t: int = 4, path: np.ndarray | None = None) -> np.ndarray:
    """keypoint [1, T, 20, 3] of the standing person, moved by ``path`` [T, 3] (default: standing still)."""
    kp = np.zeros((20, 3), np.float32)
    kp[J["hip_center"]], kp[J["spine"]] = (0, 0, 3), (0, 0.2, 3)
    kp[J["shoulder_center"]], kp[J["head"]] = (0, 0.45, 3), (0, 0.65, 3)
    for part, (x, y) in _LEFT.items():
        kp[J[f"left_{part}"]], kp[J[f"right_{part}"]] = (x, y, 3), (-x, y, 3)
    clip = np.repeat(kp[None, None], t, axis=1)
    return clip if path is None else clip + path[None, :, None].astype(np.float32)


def present_of(kp):
    return kp.any(-1)


def test_a_known_point_projects_where_the_formula_says():
    front = Camera(azimuth=0.0, elevation=0.0, distance=4.0, focal=500.0)
    np.testing.assert_allclose(front.project(np.zeros(3)), [320, 240])  # the aim point: the image centre
    # C = (0, 0, -4); r = (-1, 0, 0), b = (0, -1, 0), f = (0, 0, 1): X = 1, Y = -0.5, Z = 4
    np.testing.assert_allclose(front.project(np.array([-1.0, 0.5, 0.0])), [320 + 500 / 4, 240 - 500 * 0.5 / 4])
    side = Camera(azimuth=np.pi / 2, elevation=0.0, distance=4.0, focal=500.0)  # C = (4, 0, 0), r = (0, 0, -1)
    np.testing.assert_allclose(side.project(np.array([0.0, 0.0, 1.0])), [320 - 500 / 4, 240], atol=1e-9)
    phi = np.deg2rad(30)
    above = Camera(azimuth=0.0, elevation=phi, distance=4.0, focal=500.0)
    # a point 1 m above the aim point: Y = -cos(phi), Z = d - sin(phi)
    np.testing.assert_allclose(above.project(np.array([0.0, 1.0, 0.0])),
                               [320, 240 - 500 * np.cos(phi) / (4 - np.sin(phi))])
    # points along the ray through the camera centre land on one pixel; depth is Z
    centre, rows = above.axes()
    p = np.array([0.3, -0.2, 0.5])
    np.testing.assert_allclose(above.project(centre + 2 * (p - centre)), above.project(p))
    assert above.camera_coordinates(p)[2] == pytest.approx((p - centre) @ rows[2])


def test_cameras_are_rotations_not_reflections():
    rng = np.random.default_rng(0)
    for _ in range(50):
        camera = draw_camera(rng)
        _, rows = camera.axes()
        np.testing.assert_allclose(rows @ rows.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rows) == pytest.approx(1.0)
        assert rows[0, 1] == pytest.approx(0.0)  # image x stays horizontal: no roll
        assert -90 <= np.rad2deg(camera.azimuth) <= 90 and -10 <= np.rad2deg(camera.elevation) <= 30


def test_a_front_view_shows_the_person_upright_and_not_mirrored():
    kp = standing()
    out, score, camera = view(kp, present_of(kp), KINECT, np.random.default_rng(0),
                              Camera(azimuth=0.0, elevation=0.0, distance=4.0, focal=600.0))
    seen = score[0] > 0
    u, v = out[0, ..., 0], out[0, ..., 1]
    both = seen[:, J["head"]] & seen[:, J["left_ankle"]]
    assert (v[both, J["head"]] < v[both, J["left_ankle"]]).all()  # image y points down
    both = seen[:, J["left_shoulder"]] & seen[:, J["right_shoulder"]]
    assert (u[both, J["left_shoulder"]] > u[both, J["right_shoulder"]]).all()  # facing us: their left on our right
    assert camera.focal == 600.0 and camera.distance == 4.0  # nothing to correct


def test_the_body_is_framed_in_metres_whatever_the_units():
    kp = standing()
    world = to_world(kp, present_of(kp), KINECT)
    ls, rs, lh, rh = KINECT.torso()
    torso = np.linalg.norm((world[..., ls, :] + world[..., rs, :]) / 2 - (world[..., lh, :] + world[..., rh, :]) / 2,
                           axis=-1)
    np.testing.assert_allclose(torso, TORSO_M, rtol=1e-6)
    np.testing.assert_allclose((world[..., lh, :] + world[..., rh, :]) / 2, 0, atol=1e-6)  # mid-hip at the origin
    a = project_views(kp, present_of(kp), KINECT, 3, (0, 1, 2))
    b = project_views(kp * 1000 + 5000, present_of(kp), KINECT, 3, (0, 1, 2))  # millimetres, elsewhere
    for (ka, sa), (kb, sb) in zip(a, b, strict=True):
        np.testing.assert_allclose(ka, kb, atol=1e-3)
        np.testing.assert_array_equal(sa, sb)


def test_views_are_deterministic_and_differ():
    kp = standing(t=20)
    a = project_views(kp, present_of(kp), KINECT, 3, (5, 7, 11))
    b = project_views(kp, present_of(kp), KINECT, 3, (5, 7, 11))
    for (ka, sa), (kb, sb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(sa, sb)
    assert not np.allclose(a[0][0], a[1][0], atol=5) and not np.allclose(a[1][0], a[2][0], atol=5)
    other = project_views(kp, present_of(kp), KINECT, 1, (6, 7, 11))[0]
    assert not np.allclose(a[0][0], other[0], atol=5)
    # view k depends on (key, k) only, not on how many views are drawn
    np.testing.assert_array_equal(project_views(kp, present_of(kp), KINECT, 2, (5, 7, 11))[1][0], a[1][0])


def test_pose_estimator_output():
    kp = standing(t=600)
    kp[0, :, J["left_hand"]] = 0  # a joint the source lacks
    present = present_of(kp)
    rng = np.random.default_rng(3)
    out, score, camera = view(kp, present, KINECT, rng)
    assert out.shape == (1, 600, 20, 2) and out.dtype == np.float32
    assert score.shape == (1, 600, 20) and score.dtype == np.float32
    seen = score > 0
    assert (score[seen] >= 0.6).all() and (score[seen] <= 1.0).all() and (score[~seen] == 0).all()
    assert (out[~seen] == 0).all()
    assert not seen[..., J["left_hand"]].any()
    missed = 1 - seen[present].mean()
    assert DROP / 2 < missed < DROP * 1.5  # about 2 % of the present joints
    assert ((out[seen] >= 0) & (out[seen] <= [IMAGE_W, IMAGE_H])).all()
    residual = out[seen] - camera.project(to_world(kp, present, KINECT))[seen]
    assert residual.std() == pytest.approx(NOISE_PX, rel=0.05) and abs(residual.mean()) < 0.1
    # the framing: a 1.7 m body at the drawn distance fills 1/3..2/3 of the frame height
    assert 1 / 3 <= camera.focal * BODY_M / camera.distance / IMAGE_H <= 2 / 3


def test_a_walker_passing_the_camera_stays_in_front_of_it_and_in_the_frame():
    t = 50
    path = np.zeros((t, 3))
    path[:, 2] = np.linspace(5, -8, t)  # from 8 m away to 5 m behind the recording camera
    path[:, 0] = np.linspace(-3, 3, t)  # and across
    kp = standing(t, path)
    present = present_of(kp)
    for k in range(20):
        out, score, camera = view(kp, present, KINECT, np.random.default_rng(k))
        depth = camera.camera_coordinates(to_world(kp, present, KINECT)[present])[:, 2]
        assert depth.min() >= NEAR_M - 1e-9
        seen = score > 0
        assert ((out[seen] >= 0) & (out[seen] <= [IMAGE_W, IMAGE_H])).all()


@pytest.mark.parametrize("name", ["nw_ucla", "bandai_namco"])
def test_real_people_stand_upright_in_every_view(name):
    f = load_annotations(shared_pickle(name), layout="kinect20")
    head, hip = J["head"], J["hip_center"]
    upright, frames = 0, 0
    for i, a in enumerate(f.annotations[::4]):
        kp = a["keypoint"]
        for out, score in project_views(kp, present_of(kp), KINECT, 2, (0, i)):
            both = (score[0, :, head] > 0) & (score[0, :, hip] > 0)
            upright += int((out[0, both, head, 1] < out[0, both, hip, 1]).sum())
            frames += int(both.sum())
    print(f"{name}: head above the hip centre in {upright / frames:.4%} of {frames} projected frames")
    # measured 99.88 % (NW-UCLA) and 99.97 % (Bandai-Namco) of all views: the rest are bows, pick-ups, a dancer
    # touching the floor and runners leaning towards a camera above them
    assert upright / frames > 0.995


def test_a_layout_without_a_torso_is_sized_by_its_rms_radius():
    from conftest import STICK

    kp = np.random.default_rng(0).normal(0, 300, (1, 10, 6, 3)).astype(np.float32) + [0, 0, 3000]  # millimetres
    world = to_world(kp, present_of(kp), STICK)
    assert np.sqrt((world**2).sum(-1).mean()) == pytest.approx(RMS_PER_TORSO * TORSO_M, rel=1e-5)
    out, score, _ = view(kp, present_of(kp), STICK, np.random.default_rng(0))
    assert ((out[score > 0] >= 0) & (out[score > 0] <= [IMAGE_W, IMAGE_H])).all()
