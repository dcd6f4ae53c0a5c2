import numpy as np
import pytest
from conftest import STICK

from skeletonmae.errors import ConfigError
from skeletonmae.skeleton import LAYOUTS, REGION_NAMES, body_measure, get_layout, joint_mapping, map_joints


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_a_connected_person(name):
    layout = get_layout(name)
    a = layout.adjacency()
    assert a.shape == (layout.num_joints,) * 2
    assert np.array_equal(a, a.T) and np.all(np.diag(a) == 0)
    # every joint reachable from the centre: a skeleton is one connected tree-like graph
    reach = np.eye(layout.num_joints)[layout.center]
    for _ in range(layout.num_joints):
        reach = np.minimum(1, reach + reach @ a)
    assert reach.all()
    assert len(layout.regions) == len(REGION_NAMES)
    # left/right limbs hold joints named left/right
    for region, side in ((2, "left"), (3, "right"), (4, "left"), (5, "right")):
        assert all(layout.joints[j].startswith(side) for j in layout.regions[region])


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_parents_form_a_tree_of_bones_rooted_at_the_centre(name):
    layout = get_layout(name)
    parent, a = layout.parents(), layout.adjacency()
    assert parent[layout.center] == layout.center
    for j in range(layout.num_joints):
        if j != layout.center:
            assert a[j, parent[j]] == 1  # a bone
        k = j
        for _ in range(layout.num_joints):
            k = parent[k]
        assert k == layout.center  # every chain ends at the centre


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_mirror_pairs_left_and_right_joints(name):
    layout = get_layout(name)
    twin = layout.mirror()
    np.testing.assert_array_equal(twin[twin], np.arange(layout.num_joints))  # an involution
    for j, t in enumerate(twin):
        name_j, name_t = layout.joints[j], layout.joints[t]
        if name_j.startswith(("left_", "right_")):
            assert name_t != name_j and name_t.split("_", 1)[1] == name_j.split("_", 1)[1]
        else:
            assert t == j
    # the mirror maps bones to bones and left limbs onto right ones
    bones = {frozenset(b) for b in layout.bones}
    assert {frozenset((twin[i], twin[j])) for i, j in layout.bones} == bones
    assert sorted(twin[list(layout.regions[2])]) == sorted(layout.regions[3])


def test_coco17_parents_by_name():
    layout = get_layout("coco17")
    name = {n: i for i, n in enumerate(layout.joints)}
    parent = {layout.joints[j]: layout.joints[p] for j, p in enumerate(layout.parents())}
    assert parent["left_wrist"] == "left_elbow" and parent["left_elbow"] == "left_shoulder"
    assert parent["left_shoulder"] == "nose" and parent["left_hip"] == "left_shoulder"
    assert parent["right_ankle"] == "right_knee" and parent["left_ear"] == "left_eye" and name["nose"] == 0


def test_coco17_regions_match_paper_fig2d():
    coco = get_layout("coco17")
    assert coco.regions == ((0, 1, 2, 3, 4), (5, 6, 11, 12), (7, 9), (8, 10), (13, 15), (14, 16))
    # paper's figure draws shoulder-shoulder and hip-hip; PYSKL's graph has neither
    assert coco.adjacency()[5, 6] == 1 and coco.adjacency()[11, 12] == 1
    pyskl = get_layout("coco17_pyskl").adjacency()
    assert pyskl[5, 6] == 0 and pyskl[11, 12] == 0 and pyskl.sum() == coco.adjacency().sum() - 4
    assert list(coco.region_of_joint()) == [0] * 5 + [1, 1, 2, 3, 2, 3, 1, 1, 4, 5, 4, 5]


def test_adjacency_self_loops():
    a = get_layout("penn13").adjacency(self_loops=True)
    assert np.all(np.diag(a) == 1)


def test_unknown_layout_suggests():
    with pytest.raises(ConfigError, match="coco17"):
        get_layout("coco71")


def test_penn_to_coco_mapping_as_documented():
    # ../shared/data/penn_action/README.md: COCO 0 <- Penn 0, 5..16 <- 1..12, eyes and ears absent
    expected = [0, -1, -1, -1, -1] + list(range(1, 13))
    assert joint_mapping("penn13", "coco17").tolist() == expected


def test_map_joints_zeroes_missing():
    kp = np.arange(1 * 2 * 13 * 2, dtype=np.float32).reshape(1, 2, 13, 2) + 1
    out, score = map_joints(kp, None, "penn13", "coco17")
    assert out.shape == (1, 2, 17, 2) and score.shape == (1, 2, 17)
    assert np.all(out[..., 1:5, :] == 0) and np.all(score[..., 1:5] == 0)
    np.testing.assert_array_equal(out[..., 5:, :], kp[..., 1:, :])
    np.testing.assert_array_equal(out[..., 0, :], kp[..., 0, :])
    assert np.all(score[..., 5:] == 1)


def test_mapping_identity():
    assert joint_mapping("kinect20", "kinect20").tolist() == list(range(20))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_built_in_layout_has_a_torso(name):
    layout = get_layout(name)
    torso = layout.torso()
    assert torso is not None
    assert [layout.joints[i] for i in torso] == ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]


def test_body_measure_by_hand():
    layout = get_layout("coco17")
    ls, rs, lh, rh = layout.torso()
    kp = np.zeros((2, 3, 17, 2), np.float32)  # [M, T, V, C]
    for t, (dx, torso) in enumerate([(0, 40), (200, 40), (400, 100)]):
        kp[0, t, [ls, rs, lh, rh]] = [[dx + 90, 100], [dx + 110, 100], [dx + 90, 100 + torso], [dx + 110, 100 + torso]]
    kp[1] = 1000  # the second person does not count
    present = np.ones(kp.shape[:-1], bool)
    size, center = body_measure(kp, present, layout)
    assert size == pytest.approx(40)  # median of 40, 40, 100
    np.testing.assert_allclose(center, [(100 + 300 + 500) / 3, (140 + 140 + 200) / 3])
    present[0, 2, lh] = False  # frame 2 lacks a hip: it is left out of both
    size, center = body_measure(kp, present, layout)
    assert size == pytest.approx(40)
    np.testing.assert_allclose(center, [200, 140])
    # leading axes (the K clips of a test sample) are more frames of the same person
    size, center = body_measure(kp[None].repeat(2, 0), present[None].repeat(2, 0), layout)
    assert size == pytest.approx(40) and center == pytest.approx([200, 140])
    present[0, :, rs] = False
    assert body_measure(kp, present, layout) is None  # no frame shows all four


def test_layout_without_torso_joints():
    assert STICK.torso() is None
    kp = np.ones((1, 2, 6, 3), np.float32)
    assert body_measure(kp, np.ones(kp.shape[:-1], bool), STICK) is None


def test_body_size_has_a_floor_for_a_torso_seen_end_on():
    """Shoulders on top of the hips (a torso seen end on, or a mis-detection) must not blow the clip up."""
    from skeletonmae.skeleton import TORSO_FLOOR, body_measure

    layout = get_layout("coco17")
    kp = np.zeros((1, 2, 17, 2), np.float32)
    kp[..., 1] = np.linspace(0, 1.6, 17)  # joints spread 1.6 high
    ls, rs, lh, rh = layout.torso()
    kp[..., [ls, rs, lh, rh], :] = 0.5  # torso length 0
    size, _ = body_measure(kp, np.ones((1, 2, 17), bool), layout)
    assert size == pytest.approx(TORSO_FLOOR * 1.6)
