"""Convert NTU RGB+D 60/120 raw ``.skeleton`` files to a PYSKL / MMAction2 annotation pickle.

The raw format (Kinect v2, one text file per clip, whitespace-separated values, one record a line)::

    T                                   number of frames
    then, for each of the T frames:
      B                                 number of bodies in this frame (may be 0)
      then, for each of the B bodies:
        bodyID clipedEdges handLeftConfidence handLeftState handRightConfidence handRightState
               isResticted leanX leanY trackingState                     (10 values)
        J                               number of joints (always 25)
        J lines of 12 values:
          x y z depthX depthY colorX colorY orientationW orientationX orientationY orientationZ
          trackingState

``x y z`` are camera-space metres, ``colorX colorY`` are pixels in the 1920x1080 colour image, and a
joint's ``trackingState`` is 0 (not tracked), 1 (inferred) or 2 (tracked). File names encode the
sample: ``SsssCcccPpppRrrrAaaa`` = setup, camera, performer, replication, action (all 1-based), e.g.
``S001C002P003R002A013.skeleton``; the class label is ``action - 1``.

Choices made here:

- Bodies are followed across frames by their ``bodyID`` (kept as the original text, since the ids are
  64-bit integers). A frame where a body is absent has zero coordinates and score 0.
- At most ``max_persons`` bodies are kept: those with the largest motion, measured as the sum over
  joints and x/y/z of the variance over the frames in which the body is present (a body seen in one
  frame has motion 0). Kept bodies are ordered by decreasing motion; ties keep first-appearance order.
- ``keypoint_score`` is 1.0 for a tracked joint (state 2), 0.5 for an inferred one (state 1) and 0 for
  a joint that is not tracked (state 0), a body absent from the frame, or a non-finite coordinate
  (whose value is replaced by 0). Coordinates of untracked joints are kept as Kinect reported them.
- NTU-60 is setups 1-17 and actions 1-60; ``benchmark='ntu60'`` keeps only those samples, so it may
  be pointed at an NTU-120 folder. ``benchmark='ntu120'`` keeps every sample (actions 1-120).
- Splits: cross-subject (``xsub``) trains on a fixed list of performers; cross-view (``xview``, NTU-60)
  trains on cameras 2 and 3; cross-setup (``xset``, NTU-120) trains on even setup ids.
- Output (:func:`convert_ntu`): ``mode='3d'`` gives ``keypoint`` [M, T, 25, 3] in metres and no score,
  as PYSKL's ``ntu60_3danno.pkl``; ``mode='2d'`` gives ``keypoint`` [M, T, 25, 2] in colour-image pixels
  with ``keypoint_score`` [M, T, 25] and ``img_shape = original_shape = (1080, 1920)``. M varies per
  sample (1..max_persons).

Parsing walks the frame/body structure line by line, then reads all joint lines of a file in one
``numpy.loadtxt`` call (about 6 ms for a 100-frame, 2-body file); if that fails, a line-by-line check
finds the culprit. A malformed file raises :class:`~skeletonmae.errors.DataError` naming the file, the
(1-based) line and what was expected there. Known-bad NTU samples (e.g. the published lists of
samples with missing skeletons) can be skipped by passing their names to :func:`convert_ntu`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .annotations import save_annotations

__all__ = [
    "NTU_IMG_SHAPE",
    "NTU_NUM_JOINTS",
    "NTU60_XSUB_TRAIN_SUBJECTS",
    "NTU60_XVIEW_TRAIN_CAMERAS",
    "NTU120_XSET_TRAIN_SETUPS",
    "NTU120_XSUB_TRAIN_SUBJECTS",
    "convert_ntu",
    "ntu_sample_splits",
    "parse_ntu_name",
    "read_skeleton_file",
]

NTU_NUM_JOINTS = 25
NTU_IMG_SHAPE = (1080, 1920)  # (height, width) of the Kinect v2 colour image

NTU60_XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91,
    92, 93, 94, 95, 97, 98, 100, 103,
)
NTU60_XVIEW_TRAIN_CAMERAS = (2, 3)
NTU120_XSET_TRAIN_SETUPS = tuple(range(2, 33, 2))  # even setup ids of S001..S032
NTU60_MAX_SETUP, NTU60_NUM_ACTIONS, NTU120_NUM_ACTIONS = 17, 60, 120

_BODY_FIELDS = 10
_JOINT_FIELDS = 12
_JOINT_LINE = (
    "x y z depthX depthY colorX colorY orientationW orientationX orientationY orientationZ trackingState"
)
_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_SCORE_OF_STATE = np.array([0.0, 0.5, 1.0], dtype=np.float32)  # indexed by trackingState 0/1/2
_SPLITS = {
    "ntu60": ("xsub_train", "xsub_val", "xview_train", "xview_val"),
    "ntu120": ("xsub_train", "xsub_val", "xset_train", "xset_val"),
}


# ----------------------------------------------------------------------------------------- file names


def parse_ntu_name(name: str | os.PathLike) -> dict[str, int]:
    """``'S001C002P003R002A013'`` (or a path / ``.skeleton`` file name) -> its five 1-based ids.

    Returns ``dict(setup=1, camera=2, performer=3, replication=2, action=13)``.
    """
    stem = Path(name).name
    if stem.endswith(".skeleton"):
        stem = stem[: -len(".skeleton")]
    m = _NAME_RE.fullmatch(stem)
    if m is None:
        raise DataError(
            f"'{name}' is not an NTU RGB+D sample name; expected 'SsssCcccPpppRrrrAaaa' with 3-digit ids, "
            "e.g. 'S001C002P003R002A013'"
        )
    setup, camera, performer, replication, action = (int(g) for g in m.groups())
    return dict(setup=setup, camera=camera, performer=performer, replication=replication, action=action)


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in _SPLITS:
        raise ConfigError(f"unknown NTU benchmark '{benchmark}'; expected one of {sorted(_SPLITS)}")


def ntu_sample_splits(name: str | os.PathLike, benchmark: str = "ntu60") -> list[str]:
    """The splits of ``benchmark`` a sample belongs to, e.g. ``['xsub_train', 'xview_val']``.

    Empty when the sample is not part of the benchmark (an NTU-120-only sample with ``'ntu60'``).
    """
    _check_benchmark(benchmark)
    info = parse_ntu_name(name)
    if benchmark == "ntu60":
        if info["setup"] > NTU60_MAX_SETUP or not 1 <= info["action"] <= NTU60_NUM_ACTIONS:
            return []
        xsub = info["performer"] in NTU60_XSUB_TRAIN_SUBJECTS
        second = "xview_train" if info["camera"] in NTU60_XVIEW_TRAIN_CAMERAS else "xview_val"
    else:
        if not 1 <= info["action"] <= NTU120_NUM_ACTIONS:
            return []
        xsub = info["performer"] in NTU120_XSUB_TRAIN_SUBJECTS
        second = "xset_train" if info["setup"] % 2 == 0 else "xset_val"
    return ["xsub_train" if xsub else "xsub_val", second]


# ------------------------------------------------------------------------------------------- reading


class _Cursor:
    """Walks the lines of one file, turning every shortfall into a DataError naming file and line."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.lines = lines
        self.pos = 0  # index of the next line to read

    def error(self, lineno: int, what: str, got: str) -> DataError:
        return DataError(f"{self.path}: line {lineno}: expected {what}, got {got}")

    def eof(self, what: str) -> DataError:
        return DataError(
            f"{self.path}: line {len(self.lines) + 1}: file ends early (truncated?); expected {what}"
        )

    def count(self, what: str) -> int:
        """Read a line holding one non-negative integer."""
        if self.pos >= len(self.lines):
            raise self.eof(what)
        tokens = self.lines[self.pos].split()
        self.pos += 1
        if len(tokens) != 1 or not tokens[0].isdigit():
            raise self.error(self.pos, what + " (one non-negative integer)", _show(tokens))
        return int(tokens[0])

    def body_id(self, what: str) -> str:
        """Read a body header line (10 values); return its bodyID."""
        if self.pos >= len(self.lines):
            raise self.eof(what)
        tokens = self.lines[self.pos].split()
        self.pos += 1
        if len(tokens) != _BODY_FIELDS:
            raise self.error(self.pos, f"{what} ({_BODY_FIELDS} values)", f"{len(tokens)} value(s)")
        return tokens[0]

    def joints(self, start: int, n: int, where: str) -> np.ndarray:
        """Check the ``n`` joint lines from line index ``start`` one by one; return them as float64 [n, 12].

        The slow, exact path: it names the first bad line. Also raises if the file ends inside the block.
        """
        rows = [line.split() for line in self.lines[start : start + n]]
        for k, row in enumerate(rows):
            if len(row) != _JOINT_FIELDS:
                raise self.error(
                    start + k + 1,
                    f"{_JOINT_FIELDS} values ({_JOINT_LINE}) for joint {k + 1} of {n} of {where}",
                    f"{len(row)} value(s)" if row else "an empty line",
                )
            for token in row:
                try:
                    float(token)
                except ValueError:
                    raise self.error(
                        start + k + 1, f"numbers for joint {k + 1} of {n} of {where}", f"'{token}'"
                    ) from None
            if row[-1] not in ("0", "1", "2"):
                raise self.error(
                    start + k + 1,
                    f"trackingState 0, 1 or 2 (last value) for joint {k + 1} of {n} of {where}",
                    f"'{row[-1]}'",
                )
        if len(rows) < n:
            raise self.eof(f"joint line {len(rows) + 1} of {n} of {where}")
        return np.array(rows, dtype=np.float64)


def _show(tokens: list[str]) -> str:
    text = " ".join(tokens)
    return f"'{text[:60]}...'" if len(text) > 60 else f"'{text}'" if text else "an empty line"


class _Block:
    """Where one body's joint lines are: frame, bodyID, first line index, description for messages."""

    __slots__ = ("frame", "body_id", "start", "where")

    def __init__(self, frame: int, body_id: str, start: int, where: str):
        self.frame, self.body_id, self.start, self.where = frame, body_id, start, where


def _walk(cur: _Cursor, blocks: list[_Block]) -> int:
    """Check the frame / body / joint-count structure, appending each joint block; return T.

    Joint lines are skipped here (only their number is known); :func:`_parse_joints` reads them.
    """
    num_frames = cur.count("the number of frames")
    if num_frames == 0:
        raise DataError(f"{cur.path}: line 1: the file records 0 frames; skip it (missing_file_list)")
    for t in range(num_frames):
        frame = f"frame {t + 1} of {num_frames}"
        num_bodies = cur.count(f"the number of bodies in {frame}")
        seen: dict[str, int] = {}
        for b in range(num_bodies):
            where = f"body {b + 1} of {num_bodies} in {frame}"
            line = cur.pos + 1
            body_id = cur.body_id(f"the header of {where}")
            if body_id in seen:
                raise cur.error(line, f"a bodyID not already used in {frame} (line {seen[body_id]})",
                                f"'{body_id}' again")
            seen[body_id] = line
            line = cur.pos + 1
            num_joints = cur.count(f"the number of joints of {where}")
            if num_joints != NTU_NUM_JOINTS:
                raise cur.error(line, f"{NTU_NUM_JOINTS} joints (Kinect v2) for {where}", str(num_joints))
            if cur.pos + num_joints > len(cur.lines):
                cur.joints(cur.pos, num_joints, where)  # raises: a bad line or the end of the file
            blocks.append(_Block(t, body_id, cur.pos, where))
            cur.pos += num_joints
    rest = next((i for i in range(cur.pos, len(cur.lines)) if cur.lines[i].strip()), None)
    if rest is not None:
        got = _show(cur.lines[rest].split())
        raise cur.error(rest + 1, f"the end of the file after {num_frames} frames", got)
    return num_frames


def _parse_joints(cur: _Cursor, blocks: list[_Block]) -> np.ndarray:
    """All joint blocks as float64 [len(blocks), 25, 12]: one C-level parse, line checks if it fails."""
    n = NTU_NUM_JOINTS
    if not blocks:
        return np.zeros((0, n, _JOINT_FIELDS))
    rows = [line for b in blocks for line in cur.lines[b.start : b.start + n]]
    try:
        arr = np.loadtxt(rows, dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        arr = None
    if arr is None or arr.shape != (len(rows), _JOINT_FIELDS) or not np.isin(arr[:, -1], (0, 1, 2)).all():
        # slow path: find and name the bad line (loadtxt skips blank lines, hence the shape check)
        return np.stack([cur.joints(b.start, n, b.where) for b in blocks])
    return arr.reshape(len(blocks), n, _JOINT_FIELDS)


def read_skeleton_file(path: str | os.PathLike, max_persons: int = 2) -> dict:
    """Read one NTU ``.skeleton`` file.

    Returns ``{'frame_dir': stem, 'label': action - 1, 'total_frames': T,
    'keypoint': float32 [M, T, 25, 3] (x, y, z metres), 'keypoint_2d': float32 [M, T, 25, 2]
    (colour pixels), 'keypoint_score': float32 [M, T, 25]}`` with ``M = min(bodies, max_persons)``;
    see the module docstring for body selection and scores. Raises DataError if the file is malformed,
    has no frames or records no body at all.
    """
    path = Path(path)
    if max_persons < 1:
        raise ConfigError(f"max_persons must be >= 1, got {max_persons}")
    info = parse_ntu_name(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as an NTU text file ({type(e).__name__}: {e})") from e
    cur = _Cursor(path, text.splitlines())
    blocks: list[_Block] = []
    try:
        num_frames = _walk(cur, blocks)
    except DataError:
        _parse_joints(cur, blocks)  # a bad joint line earlier in the file is the first problem to report
        raise
    if not blocks:
        raise DataError(
            f"{path}: no body recorded in any of its {num_frames} frames; skip it (missing_file_list)"
        )
    arr = _parse_joints(cur, blocks)  # [K, 25, 12]

    ids = list(dict.fromkeys(b.body_id for b in blocks))  # bodies in order of first appearance
    slot = {body_id: i for i, body_id in enumerate(ids)}
    body = np.array([slot[b.body_id] for b in blocks])
    frame = np.array([b.frame for b in blocks])
    coords = arr[..., [0, 1, 2, 5, 6]]
    finite = np.isfinite(coords).all(axis=-1)  # [K, 25]
    coords[~finite] = 0.0
    score = np.where(finite, _SCORE_OF_STATE[arr[..., -1].astype(np.int64)], 0.0)

    shape = (len(ids), num_frames, NTU_NUM_JOINTS)
    xyz, col = np.zeros((*shape, 3), np.float32), np.zeros((*shape, 2), np.float32)
    scores, present = np.zeros(shape, np.float32), np.zeros(shape[:2], bool)
    xyz[body, frame], col[body, frame] = coords[..., :3], coords[..., 3:]
    scores[body, frame], present[body, frame] = score, True

    motion = [float(xyz[i][present[i]].var(axis=0).sum()) for i in range(len(ids))]
    keep = sorted(range(len(ids)), key=lambda i: -motion[i])[:max_persons]  # stable: ties by appearance
    return {
        "frame_dir": path.name[: -len(".skeleton")] if path.name.endswith(".skeleton") else path.stem,
        "label": info["action"] - 1,
        "total_frames": num_frames,
        "keypoint": xyz[keep],
        "keypoint_2d": col[keep],
        "keypoint_score": scores[keep],
    }


# ---------------------------------------------------------------------------------------- conversion


def _stderr_progress(done: int, total: int) -> None:
    if done == total or done % 2000 == 0:
        print(f"ntu: {done}/{total} files", file=sys.stderr, flush=True)


def _read_name_list(names: str | os.PathLike | Iterable[str]) -> set[str]:
    if isinstance(names, (str, os.PathLike)):
        path = Path(names)
        try:
            names = path.read_text().splitlines()
        except OSError as e:
            raise DataError(f"{path}: cannot read the list of missing samples ({e})") from e
    out = set()
    for raw in names:
        name = raw.strip()
        if name and not name.startswith("#"):
            out.add(name[: -len(".skeleton")] if name.endswith(".skeleton") else name)
    return out


def convert_ntu(
    skeleton_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    benchmark: str = "ntu60",
    mode: str = "3d",
    max_persons: int = 2,
    missing_file_list: str | os.PathLike | Iterable[str] | None = None,
    progress: Callable[[int, int], None] | None = _stderr_progress,
) -> Path:
    """Convert every ``*.skeleton`` file of ``skeleton_dir`` into one annotation pickle at ``out_path``.

    Args:
        skeleton_dir: folder holding the raw NTU files (not searched recursively).
        out_path: the pickle to write (protocol 4, written atomically).
        benchmark: ``'ntu60'`` (splits ``xsub_*``, ``xview_*``; setups 1-17, actions 1-60 only) or
            ``'ntu120'`` (splits ``xsub_*``, ``xset_*``; all 120 actions).
        mode: ``'3d'`` (x, y, z metres, no score) or ``'2d'`` (colour pixels + ``keypoint_score``).
        max_persons: bodies kept per sample (the most moving ones).
        missing_file_list: names of samples to skip: a text file with one name per line (``#`` starts a
            comment, a ``.skeleton`` suffix is optional) or an iterable of names.
        progress: called as ``progress(done, total)`` after each file; None for silence. The default
            prints a line to stderr every 2000 files.

    Returns the path written. Raises DataError naming the file for any malformed sample.
    """
    _check_benchmark(benchmark)
    if mode not in ("2d", "3d"):
        raise ConfigError(f"unknown mode '{mode}'; expected '2d' or '3d'")
    skeleton_dir = Path(skeleton_dir)
    if not skeleton_dir.is_dir():
        raise DataError(f"{skeleton_dir}: no such folder of NTU .skeleton files")
    skip = set() if missing_file_list is None else _read_name_list(missing_file_list)
    files = []
    for f in sorted(skeleton_dir.glob("*.skeleton")):
        stem = f.name[: -len(".skeleton")]
        if stem not in skip and ntu_sample_splits(stem, benchmark):
            files.append(f)
    if not files:
        raise DataError(
            f"{skeleton_dir}: no {benchmark} .skeleton files to convert (after skipping {len(skip)} listed "
            "name(s)); check the folder and the benchmark"
        )

    annotations: list[dict] = []
    split: dict[str, list[str]] = {name: [] for name in _SPLITS[benchmark]}
    for i, f in enumerate(files):
        sample = read_skeleton_file(f, max_persons=max_persons)
        ann = {"frame_dir": sample["frame_dir"], "label": int(sample["label"]),
               "total_frames": int(sample["total_frames"])}
        if mode == "3d":
            ann["keypoint"] = sample["keypoint"]
        else:
            ann["keypoint"] = sample["keypoint_2d"]
            ann["keypoint_score"] = sample["keypoint_score"]
            ann["img_shape"] = NTU_IMG_SHAPE
            ann["original_shape"] = NTU_IMG_SHAPE
        annotations.append(ann)
        for name in ntu_sample_splits(ann["frame_dir"], benchmark):
            split[name].append(ann["frame_dir"])
        if progress is not None:
            progress(i + 1, len(files))
    return save_annotations(out_path, annotations, split)
