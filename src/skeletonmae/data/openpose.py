"""``skeletonmae data convert openpose``: OpenPose's per-frame JSON files to an annotation pickle.

OpenPose (``--write_json DIR``) writes one file per video frame, ``<video>_<frame:012d>_keypoints.json``, holding
``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...]}, ...]}``: V joints of (x, y, confidence) per
person found, 0, 0, 0 for a joint it did not find. Here a clip is a folder of such files (frames in file-name
order), named by its path below the source folder; a frame without people leaves the clip's persons empty there.
OpenPose does not follow people from frame to frame: person i of a clip is the i-th person of each frame's list.

Labels, splits, ``label_map.txt`` and the checks are those of ``data convert arrays`` (:mod:`.arrays`); read the
result with ``data.layout=openpose18`` for OpenPose's COCO-18 model, or a layout file for BODY_25.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..skeleton import Layout
from .arrays import write_clips


def _frame_people(path: Path) -> list[np.ndarray]:
    """The [V, 3] (x, y, confidence) joints of each person of one OpenPose frame file."""
    try:
        frame = json.loads(path.read_text(encoding="utf-8"))
        people = [np.asarray(p["pose_keypoints_2d"], dtype=np.float32) for p in frame["people"]]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path} is not an OpenPose frame file ({{'people': [{{'pose_keypoints_2d': [x, y, c, "
                        f"...]}}]}}): {type(e).__name__}: {str(e)[:120]}") from e
    if any(p.ndim != 1 or len(p) % 3 for p in people):
        raise DataError(f"{path}: pose_keypoints_2d must be a flat list of (x, y, confidence) triples")
    return [p.reshape(-1, 3) for p in people]


def read_openpose_clips(source: str | os.PathLike) -> dict[str, np.ndarray]:
    """Clip name -> [M, T, V, 3] float32 (x, y, confidence), one clip per folder of OpenPose JSON files."""
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source}: give the folder that holds the clips' folders of OpenPose JSON files")
    folders = sorted({p.parent for p in source.rglob("*.json")})
    if not folders:
        raise DataError(f"{source}: no OpenPose .json files in this folder (or below it)")
    if source in folders:
        raise DataError(f"{source} holds OpenPose .json files itself; put each clip's frame files in a folder of "
                        "their own (named after the clip, in a folder named after its class)")
    clips = {}
    for folder in folders:
        frames = [_frame_people(p) for p in sorted(folder.glob("*.json"))]
        joints = {len(person) for people in frames for person in people}
        if len(joints) != 1:
            raise DataError(f"{folder}: " + ("no person in any frame; drop the clip" if not joints else
                                             f"frames hold persons of {sorted(joints)} joints; use one pose model"))
        clip = np.zeros((max(len(p) for p in frames), len(frames), joints.pop(), 3), np.float32)
        for t, people in enumerate(frames):
            for m, person in enumerate(people):
                clip[m, t] = person
        clips[folder.relative_to(source).as_posix()] = clip
    return clips


def convert_openpose(
    source: str | os.PathLike,
    out: str | os.PathLike,
    labels_csv: str | os.PathLike | None = None,
    layout: str | Layout | None = None,
    img_shape: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Convert folders of OpenPose JSON files to an annotation pickle at ``out`` and ``label_map.txt`` beside it."""
    return write_clips(read_openpose_clips(source), source, out, labels_csv, layout, True, img_shape, test_fraction,
                       seed)
