"""The NTU RGB+D raw ``.skeleton`` reader and the converter to annotation pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skeletonmae.data.annotations import check_annotations, load_annotations
from skeletonmae.data.ntu import (
    NTU60_XSUB_TRAIN_SUBJECTS,
    NTU120_XSUB_TRAIN_SUBJECTS,
    convert_ntu,
    ntu_sample_splits,
    parse_ntu_name,
    read_skeleton_file,
)
from skeletonmae.errors import ConfigError, DataError

BODY_A = "72057594037931101"
BODY_B = "72057594037931102"
BODY_C = "72057594037931103"


def joints(body: int, frame: int, states=None) -> np.ndarray:
    """A [25, 12] joint block whose values encode body, frame and joint (exact in float32)."""
    j = np.arange(25, dtype=np.float64)
    out = np.zeros((25, 12))
    out[:, 0] = body + 0.01 * j + 0.25 * frame  # x
    out[:, 1] = -body - 0.01 * j  # y
    out[:, 2] = 3.0 + 0.5 * body  # z
    out[:, 3], out[:, 4] = 250.0 + j, 200.0 + j  # depthX, depthY
    out[:, 5] = 900.0 + 10 * j + 100 * body  # colorX
    out[:, 6] = 500.0 + 5 * j + frame  # colorY
    out[:, 7:11] = (0.5, -0.5, 0.5, 0.5)  # orientation quaternion
    out[:, 11] = 2 if states is None else states
    return out


def moved(arr: np.ndarray, d: float) -> np.ndarray:
    """The joints shifted by ``d`` metres along x, y and z."""
    out = arr.copy()
    out[:, :3] += d
    return out


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]]) -> str:
    """NTU text: frames, each a list of (bodyID, [25, 12] joints)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, arr in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1194872 -0.1384563 2")
            lines.append(str(len(arr)))
            for row in arr:
                vals = [f"{v:.7g}" for v in row[:11]] + [str(int(row[11]))]
                lines.append(" ".join(vals))
    return "\r\n".join(lines) + "\r\n"  # the NTU files have Windows line ends


def write(tmp_path, name, frames) -> object:
    path = tmp_path / f"{name}.skeleton"
    path.write_text(skeleton_text(frames), newline="")
    return path


STATES = np.full(25, 2)
STATES[[3, 7]] = 1  # inferred
STATES[[21]] = 0  # not tracked


def fixture_frames():
    """3 frames; body A in all of them, body B (moving a lot) only in frames 2-3."""
    return [
        [(BODY_A, joints(1, 0))],
        [(BODY_A, joints(1, 1, STATES)), (BODY_B, joints(2, 1))],
        [(BODY_B, moved(joints(2, 2), 5.0)), (BODY_A, joints(1, 2))],
    ]


@pytest.fixture
def sample_file(tmp_path):
    return write(tmp_path, "S001C002P003R002A013", fixture_frames())


def test_read_shapes_and_metadata(sample_file):
    s = read_skeleton_file(sample_file)
    assert s["frame_dir"] == "S001C002P003R002A013" and s["label"] == 12 and s["total_frames"] == 3
    assert s["keypoint"].shape == (2, 3, 25, 3) and s["keypoint"].dtype == np.float32
    assert s["keypoint_2d"].shape == (2, 3, 25, 2) and s["keypoint_2d"].dtype == np.float32
    assert s["keypoint_score"].shape == (2, 3, 25) and s["keypoint_score"].dtype == np.float32


def test_read_values_scores_and_absent_frames(sample_file):
    s = read_skeleton_file(sample_file)
    frames = fixture_frames()
    # body B moves more (its two frames differ by about 5 in x, y and z), so it comes first
    b, a = 0, 1
    np.testing.assert_allclose(s["keypoint"][a, 0], joints(1, 0)[:, :3], rtol=1e-6)
    np.testing.assert_allclose(s["keypoint"][a, 2], joints(1, 2)[:, :3], rtol=1e-6)
    np.testing.assert_allclose(s["keypoint_2d"][a, 1], joints(1, 1)[:, 5:7], rtol=1e-6)
    np.testing.assert_allclose(s["keypoint"][b, 1], frames[1][1][1][:, :3], rtol=1e-6)
    np.testing.assert_allclose(s["keypoint"][b, 2], frames[2][0][1][:, :3], rtol=1e-6)
    np.testing.assert_allclose(s["keypoint_2d"][b, 2], frames[2][0][1][:, 5:7], rtol=1e-6)
    # body B is absent from frame 1: zeros, score 0
    assert not s["keypoint"][b, 0].any() and not s["keypoint_2d"][b, 0].any()
    assert not s["keypoint_score"][b, 0].any()
    assert (s["keypoint_score"][b, 1:] == 1).all()
    # scores of body A: tracked 1, inferred 0.5, not tracked 0 (coordinates kept as reported)
    assert (s["keypoint_score"][a, [0, 2]] == 1).all()
    expected = np.where(STATES == 2, 1.0, np.where(STATES == 1, 0.5, 0.0))
    np.testing.assert_array_equal(s["keypoint_score"][a, 1], expected)
    assert s["keypoint"][a, 1, 21].any()


def test_max_persons_keeps_the_most_moving_bodies(tmp_path):
    still = joints(1, 0)
    slight = [moved(joints(2, 0), d) for d in (0.0, 0.01, 0.02)]
    big = [moved(joints(3, 0), d) for d in (0.0, 1.0, -1.0)]
    frames = [[(BODY_A, still), (BODY_B, slight[t]), (BODY_C, big[t])] for t in range(3)]
    path = write(tmp_path, "S002C001P001R001A050", frames)
    s = read_skeleton_file(path, max_persons=2)
    assert s["keypoint"].shape == (2, 3, 25, 3)
    # most moving first: C (z of body 3 = 4.5), then B (z = 4.0); A (z = 3.5) is dropped
    assert s["keypoint"][0, 0, 0, 2] == pytest.approx(4.5)
    assert s["keypoint"][1, 0, 0, 2] == pytest.approx(4.0)
    assert read_skeleton_file(path, max_persons=3)["keypoint"].shape[0] == 3
    one = read_skeleton_file(path, max_persons=1)
    assert one["keypoint"].shape[0] == 1 and one["keypoint"][0, 0, 0, 2] == pytest.approx(4.5)


def test_frames_without_bodies_are_allowed(tmp_path):
    path = write(tmp_path, "S001C001P001R001A001", [[], [(BODY_A, joints(1, 1))]])
    s = read_skeleton_file(path)
    assert s["keypoint"].shape == (1, 2, 25, 3)
    assert not s["keypoint_score"][0, 0].any() and (s["keypoint_score"][0, 1] == 1).all()


def test_parse_ntu_name():
    assert parse_ntu_name("S001C002P003R002A013") == dict(
        setup=1, camera=2, performer=3, replication=2, action=13
    )
    assert parse_ntu_name("/data/nturgb+d_skeletons/S032C003P106R002A120.skeleton") == dict(
        setup=32, camera=3, performer=106, replication=2, action=120
    )
    for bad in ("S001C002P003R002", "s001c002p003r002a013", "S01C002P003R002A013", "foo.skeleton"):
        with pytest.raises(DataError, match="not an NTU RGB\\+D sample name"):
            parse_ntu_name(bad)


def test_subject_lists():
    assert len(NTU60_XSUB_TRAIN_SUBJECTS) == 20 and len(NTU120_XSUB_TRAIN_SUBJECTS) == 53
    assert len(set(NTU120_XSUB_TRAIN_SUBJECTS)) == 53
    assert set(NTU60_XSUB_TRAIN_SUBJECTS) < set(NTU120_XSUB_TRAIN_SUBJECTS)


@pytest.mark.parametrize(
    "name, benchmark, expected",
    [
        ("S001C001P001R001A001", "ntu60", ["xsub_train", "xview_val"]),
        ("S001C002P003R002A013", "ntu60", ["xsub_val", "xview_train"]),
        ("S017C003P038R001A060", "ntu60", ["xsub_train", "xview_train"]),
        ("S005C001P010R002A030", "ntu60", ["xsub_val", "xview_val"]),
        ("S001C001P001R001A061", "ntu60", []),  # NTU-120 action
        ("S018C002P042R001A001", "ntu60", []),  # NTU-120 setup
        ("S001C001P001R001A001", "ntu120", ["xsub_train", "xset_val"]),
        ("S002C001P045R001A100", "ntu120", ["xsub_train", "xset_train"]),
        ("S032C003P106R002A120", "ntu120", ["xsub_val", "xset_train"]),
        ("S019C002P044R002A061", "ntu120", ["xsub_val", "xset_val"]),
    ],
)
def test_split_membership(name, benchmark, expected):
    assert ntu_sample_splits(name, benchmark) == expected


def make_folder(tmp_path):
    folder = tmp_path / "skeletons"
    folder.mkdir()
    names = {
        "S001C001P001R001A001": [[(BODY_A, joints(1, t))] for t in range(4)],
        "S001C002P003R002A013": fixture_frames(),
        "S002C003P045R001A060": [[(BODY_A, joints(1, t)), (BODY_B, joints(2, t))] for t in range(2)],
        "S018C001P051R001A001": [[(BODY_A, joints(1, t))] for t in range(3)],  # NTU-120 only
        "S020C002P008R001A110": [[(BODY_A, joints(1, t))] for t in range(5)],  # NTU-120 only
        "S003C001P002R001A005": [],  # listed as missing below (0 frames: unreadable otherwise)
    }
    for name, frames in names.items():
        write(folder, name, frames)
    (folder / "README.txt").write_text("not a skeleton file")
    missing = tmp_path / "missing.txt"
    missing.write_text("# known bad samples\nS003C001P002R001A005\n\nS999C001P001R001A001.skeleton\n")
    return folder, missing


def test_convert_ntu60_3d(tmp_path):
    folder, missing = make_folder(tmp_path)
    seen = []
    out = convert_ntu(folder, tmp_path / "out" / "ntu60_3d.pkl", benchmark="ntu60", mode="3d",
                      missing_file_list=missing, progress=lambda i, n: seen.append((i, n)))
    assert out == tmp_path / "out" / "ntu60_3d.pkl"
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"split", "annotations"}
    names = [a["frame_dir"] for a in data["annotations"]]
    assert names == ["S001C001P001R001A001", "S001C002P003R002A013", "S002C003P045R001A060"]
    assert data["split"] == {
        "xsub_train": ["S001C001P001R001A001"],
        "xsub_val": ["S001C002P003R002A013", "S002C003P045R001A060"],
        "xview_train": ["S001C002P003R002A013", "S002C003P045R001A060"],
        "xview_val": ["S001C001P001R001A001"],
    }
    a = data["annotations"][1]
    assert set(a) == {"frame_dir", "label", "total_frames", "keypoint"}
    assert type(a["label"]) is int and a["label"] == 12 and a["total_frames"] == 3
    assert a["keypoint"].shape == (2, 3, 25, 3) and a["keypoint"].dtype == np.float32
    np.testing.assert_allclose(a["keypoint"], read_skeleton_file(folder / f"{names[1]}.skeleton")["keypoint"])
    assert [x["keypoint"].shape[:2] for x in data["annotations"]] == [(1, 4), (2, 3), (2, 2)]
    assert check_annotations(data, out, layout="ntu25", num_classes=60) == []
    assert load_annotations(out, layout="ntu25").num_channels == 3


def test_convert_ntu120_2d(tmp_path):
    folder, missing = make_folder(tmp_path)
    out = convert_ntu(folder, tmp_path / "ntu120_2d.pkl", benchmark="ntu120", mode="2d",
                      missing_file_list=["S003C001P002R001A005"], max_persons=1, progress=None)
    with open(out, "rb") as f:
        data = pickle.load(f)
    names = [a["frame_dir"] for a in data["annotations"]]
    assert names == ["S001C001P001R001A001", "S001C002P003R002A013", "S002C003P045R001A060",
                     "S018C001P051R001A001", "S020C002P008R001A110"]
    assert data["split"] == {
        "xsub_train": ["S001C001P001R001A001", "S002C003P045R001A060", "S020C002P008R001A110"],
        "xsub_val": ["S001C002P003R002A013", "S018C001P051R001A001"],
        "xset_train": ["S002C003P045R001A060", "S018C001P051R001A001", "S020C002P008R001A110"],
        "xset_val": ["S001C001P001R001A001", "S001C002P003R002A013"],
    }
    for a in data["annotations"]:
        assert set(a) == {"frame_dir", "label", "total_frames", "keypoint", "keypoint_score",
                          "img_shape", "original_shape"}
        m, t = a["keypoint"].shape[:2]
        assert m == 1 and t == a["total_frames"] and a["keypoint"].shape[2:] == (25, 2)
        assert a["keypoint_score"].shape == (1, t, 25)
        assert a["img_shape"] == a["original_shape"] == (1080, 1920)
    assert data["annotations"][-1]["label"] == 109
    s = read_skeleton_file(folder / "S001C002P003R002A013.skeleton")
    np.testing.assert_allclose(data["annotations"][1]["keypoint"], s["keypoint_2d"][:1])
    np.testing.assert_allclose(data["annotations"][1]["keypoint_score"], s["keypoint_score"][:1])
    assert check_annotations(data, out, layout="ntu25", num_classes=120) == []


def test_convert_fails_on_unlisted_bad_file_and_bad_arguments(tmp_path):
    folder, _ = make_folder(tmp_path)
    with pytest.raises(DataError, match=r"S003C001P002R001A005\.skeleton: line 1: .*0 frames"):
        convert_ntu(folder, tmp_path / "x.pkl", progress=None)
    with pytest.raises(ConfigError, match="unknown NTU benchmark"):
        convert_ntu(folder, tmp_path / "x.pkl", benchmark="ntu90")
    with pytest.raises(ConfigError, match="unknown mode"):
        convert_ntu(folder, tmp_path / "x.pkl", mode="rgb")
    with pytest.raises(DataError, match="no such folder"):
        convert_ntu(tmp_path / "nowhere", tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()


# ---------------------------------------------------------------------------------------- malformed


def lines_of(path):
    return path.read_text().splitlines()


def rewrite(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_truncated_file(sample_file):
    lines = lines_of(sample_file)
    # cut in the middle of the joints of frame 3's first body: keep its header, count and 10 joints
    start = 1 + (1 + 27) + (1 + 27 + 27) + 1  # frame count, frame 1, frame 2, frame 3's body count
    rewrite(sample_file, lines[: start + 2 + 10])
    with pytest.raises(DataError) as e:
        read_skeleton_file(sample_file)
    msg = str(e.value)
    assert str(sample_file) in msg and f"line {start + 13}" in msg
    assert "file ends early" in msg and "joint line 11 of 25 of body 1 of 2 in frame 3 of 3" in msg


def test_truncated_before_a_frame(sample_file):
    lines = lines_of(sample_file)
    rewrite(sample_file, lines[: 1 + 28])  # only frame 1
    with pytest.raises(DataError, match=r"line 30: file ends early.*number of bodies in frame 2 of 3"):
        read_skeleton_file(sample_file)


def test_joint_line_with_11_values(sample_file):
    lines = lines_of(sample_file)
    bad = 4 + 5  # frame count, body count, body header, joint count (lines 1-4), then joint 5
    lines[bad - 1] = " ".join(lines[bad - 1].split()[:11])
    rewrite(sample_file, lines)
    with pytest.raises(DataError) as e:
        read_skeleton_file(sample_file)
    msg = str(e.value)
    assert str(sample_file) in msg and f"line {bad}:" in msg
    assert "expected 12 values" in msg and "joint 5 of 25 of body 1 of 1 in frame 1 of 3" in msg
    assert "got 11 value(s)" in msg


@pytest.mark.parametrize(
    "line, new, expected",
    [
        (1, "three", "line 1: expected the number of frames"),
        (2, "1 2", "line 2: expected the number of bodies in frame 1 of 3"),
        (3, "72057594037931101 0 1 1", r"line 3: expected the header of body 1 of 1 in frame 1 of 3 \(10 "),
        (4, "24", "line 4: expected 25 joints"),
        (6, "0.1 0.2 0.3 1 2 3 4 0.5 0.5 0.5 x 2", "line 6: expected numbers for joint 2 .* got 'x'"),
        (7, "0.1 0.2 0.3 1 2 3 4 0.5 0.5 0.5 0.5 3", "line 7: expected trackingState 0, 1 or 2"),
    ],
)
def test_malformed_lines(sample_file, line, new, expected):
    lines = lines_of(sample_file)
    lines[line - 1] = new
    rewrite(sample_file, lines)
    with pytest.raises(DataError, match=expected) as e:
        read_skeleton_file(sample_file)
    assert str(sample_file) in str(e.value)


def test_trailing_content_and_duplicate_body(sample_file, tmp_path):
    rewrite(sample_file, lines_of(sample_file) + ["", "1"])
    with pytest.raises(DataError, match=r"line 141: expected the end of the file after 3 frames"):
        read_skeleton_file(sample_file)
    dup = write(tmp_path, "S001C001P001R001A002", [[(BODY_A, joints(1, 0)), (BODY_A, joints(2, 0))]])
    with pytest.raises(DataError, match=r"line 30: expected a bodyID not already used in frame 1 of 1"):
        read_skeleton_file(dup)


def test_no_bodies_and_bad_name(tmp_path):
    empty = write(tmp_path, "S001C001P001R001A003", [[], []])
    with pytest.raises(DataError, match="no body recorded in any of its 2 frames"):
        read_skeleton_file(empty)
    other = tmp_path / "clip.skeleton"
    other.write_text("0\n")
    with pytest.raises(DataError, match="not an NTU RGB\\+D sample name"):
        read_skeleton_file(other)
    with pytest.raises(DataError, match="no such file"):
        read_skeleton_file(tmp_path / "S001C001P001R001A004.skeleton")


def test_first_problem_is_reported_and_blank_joint_line(sample_file):
    lines = lines_of(sample_file)
    lines[9] = " ".join(lines[9].split()[:-1] + ["9"])  # joint 5 of frame 1
    lines[84] = "x"  # and a later structural problem: frame 3's body count
    rewrite(sample_file, lines)
    with pytest.raises(DataError, match=r"line 10: expected trackingState 0, 1 or 2 .* got '9'"):
        read_skeleton_file(sample_file)
    lines = lines_of(sample_file)
    lines[9] = ""  # loadtxt would skip a blank line; the reader must not
    rewrite(sample_file, lines[:40])
    with pytest.raises(DataError, match=r"line 10: expected 12 values .* got an empty line"):
        read_skeleton_file(sample_file)


def test_non_finite_coordinates_get_score_zero(sample_file):
    lines = lines_of(sample_file)
    row = lines[4].split()  # joint 1 of body A in frame 1
    row[0] = "nan"
    lines[4] = " ".join(row)
    rewrite(sample_file, lines)
    s = read_skeleton_file(sample_file)
    a = 1
    assert s["keypoint_score"][a, 0, 0] == 0 and not s["keypoint"][a, 0, 0].any()
    assert (s["keypoint_score"][a, 0, 1:] == 1).all() and np.isfinite(s["keypoint"]).all()
