"""Videos to an annotation pickle, with MediaPipe Pose (:mod:`skeletonmae.pose`)::

    .venv-pose/bin/python -m skeletonmae.cli.pose VIDEO [VIDEO ...] --out clips.pkl

A command of its own, not one of ``skeletonmae``'s: it runs in MediaPipe's environment, which has numpy and
MediaPipe but neither torch nor PyYAML, so this module and :mod:`skeletonmae.cli` import neither.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SkeletonMAEError


def main(argv: list[str] | None = None) -> int:
    """``python -m skeletonmae.cli.pose VIDEO [VIDEO ...] --out clips.pkl``: videos to an annotation pickle.

    Runs in MediaPipe's environment (.venv-pose); classify the result in the main one with
    ``skeletonmae predict --checkpoint CKPT clips.pkl --layout coco17``.
    """
    from ..fileio import check_output
    from ..pose import describe_clip, extract_poses, terminal_progress, write_pose_pickle

    parser = argparse.ArgumentParser(prog="python -m skeletonmae.cli.pose", description=main.__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--out", required=True, help="annotation pickle to write (layout coco17)")
    parser.add_argument("--label", type=int, default=-1, help="label stored with every clip (default -1: no label)")
    parser.add_argument("--max-persons", type=int, default=2, help="person slots in the pickle (default 2)")
    parser.add_argument("--persons", type=int, default=1, help="people to look for in each frame (default 1; each "
                        "more costs one more pass of MediaPipe)")
    args = parser.parse_args(argv)
    try:
        check_output(args.out, args.videos)
        clips = [extract_poses(v, label=args.label, max_persons=args.max_persons, persons=args.persons,
                               progress=terminal_progress(Path(v).name))
                 for v in args.videos]
        path = write_pose_pickle(clips, args.out)
    except SkeletonMAEError as e:
        print(f"skeletonmae.cli.pose: error: {e}", file=sys.stderr)
        return 2
    for clip in clips:
        print(describe_clip(clip, args.persons))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
