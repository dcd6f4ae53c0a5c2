"""The ``predict`` command: classify an annotation pickle, an array or a video with a fine-tuned checkpoint; for a
video (or with ``--window``), also a timeline of sliding windows classified per tracked person."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import count

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm")
VIDEO_WINDOW = 90  # frames of a video's timeline window by default: 3 s at 30 fps


def cmd_predict(args) -> int:
    import json

    import numpy as np

    from ..data.annotations import load_annotations
    from ..errors import DataError
    from ..fileio import atomic_open, check_output
    from ..inference import load
    from ..zoo import classifier_file

    model_file = classifier_file(args.model) if args.model else Path(args.checkpoint)
    inputs = [model_file, args.input] + ([args.score] if args.score else [])
    for out in (args.out, args.timeline_png, args.poses):
        if out is not None:
            check_output(out, inputs)
    path = Path(args.input)
    is_video = path.suffix.lower() in VIDEO_SUFFIXES
    if args.poses and not is_video:
        raise DataError(f"{path}: --poses keeps the poses extracted from a video, and the input is not one")
    if (args.window or args.timeline_png) and path.suffix == ".npy":
        raise DataError(f"{path}: a timeline (--window, --timeline-png) needs a video or an annotation pickle, not an "
                        "array")
    if args.timeline_png and not (is_video or args.window):
        raise DataError(f"{path}: --timeline-png draws the timeline, which a .pkl gets with --window FRAMES; give it")
    predictor = load(model_file)
    layout = args.layout
    clips = []  # annotation dicts a timeline can be made of
    if path.suffix == ".pkl":
        clips = load_annotations(path, layout=layout or predictor.cfg.data.layout, labelled=False).samples(args.split)
        results = predictor.predict_samples(clips, layout=layout, top_k=args.top_k)
    elif path.suffix == ".npy":
        keypoint = _load_array(path)
        score = _load_array(args.score) if args.score else None
        results = [{"frame_dir": path.stem, **predictor.predict(keypoint, score, args.img_shape, layout, args.top_k)}]
    elif is_video:
        from ..pose_env import video_poses

        clips = [video_poses(path, persons=args.persons, keep=args.poses)]
        layout = "coco17"
        results = predictor.predict_samples(clips, layout=layout, top_k=args.top_k)
        results[0].pop("label", None)
    else:
        raise DataError(f"{path}: unknown input kind '{path.suffix}'; give an annotation pickle (.pkl), an array "
                        f"[M, T, V, C] (.npy) or a video ({', '.join(VIDEO_SUFFIXES)})")
    if args.timeline_png and len(clips) != 1:
        raise DataError(f"{path}: --timeline-png draws the timeline of one clip (a video, or a pickle of one clip), "
                        f"and the input holds {len(clips)}")
    for r in results[:10]:
        top = ", ".join(f"{name} {p:.3f}" for name, p in r["top"])
        print(f"{r['frame_dir']}: {top}")
    if len(results) > 10:
        print(f"... {len(results) - 10} more clips")
    labelled = [r for r in results if "label" in r]
    if labelled:
        acc = np.mean([int(np.argmax(r["scores"])) == r["label"] for r in labelled])
        print(f"top-1 against the file's labels: {acc:.4f} ({len(labelled)} clips)")
    report = {"checkpoint": str(model_file), **({"model": args.model} if args.model else {}), "input": str(path),
              "class_names": predictor.class_names, "predictions": results}
    window = args.window or (VIDEO_WINDOW if is_video else None)
    if window is not None:
        report["timeline"] = _timeline(predictor, clips, window, args.stride or max(1, window // 2), args, layout)
    with atomic_open(args.out, "w", inputs=inputs) as f:
        json.dump(report, f, indent=1)
    print(f"written: {args.out}")
    return 0


def _timeline(predictor, clips: list[dict], window: int, stride: int, args, layout: str | None) -> dict:
    """The ``timeline`` entry of the JSON (every clip's windows classified per person); printed, drawn if asked."""
    import sys

    from ..timeline import classify_windows

    def progress(done: int, total: int) -> None:
        if total > 64 and sys.stderr.isatty():
            print(f"\rtimeline: {done}/{total} windows", end="\n" if done == total else "", file=sys.stderr,
                  flush=True)

    rows = []
    for clip in clips:
        fps = args.fps or clip.get("fps")
        rows += [{"clip": clip["frame_dir"], **row} for row in classify_windows(
            predictor, clip, window, stride, fps=fps, layout=layout, top_k=args.top_k, progress=progress)]
    persons = len({(r["clip"], r["person"]) for r in rows})
    print(f"timeline: {len(rows)} window(s) of {window} frames (stride {stride}), {persons} person(s)")
    for r in rows[:20]:
        when = (f"{r['start_s']:.2f}-{r['end_s']:.2f} s" if "start_s" in r
                else f"frames {r['start_frame']}-{r['end_frame']}")
        print(f"  {r['clip']} person {r['person']} {when}: " + ", ".join(f"{n} {p:.3f}" for n, p in r["top"]))
    if len(rows) > 20:
        print(f"  ... {len(rows) - 20} more windows")
    if args.timeline_png:
        from ..viz import plot_timeline

        print(f"written: {plot_timeline(rows, args.timeline_png, title=clips[0]['frame_dir'])}")
    return {"window": window, "stride": stride, "rows": rows}


def _load_array(path):
    """A numeric .npy array (never pickled objects)."""
    import numpy as np

    from ..errors import DataError

    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy array of numbers ({e})") from e
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected a numeric array, got {getattr(array, 'dtype', type(array).__name__)}")
    return array


def add_predict_parser(sub) -> argparse.ArgumentParser:
    """Add the ``predict`` command to a CLI's subparsers."""
    p = sub.add_parser("predict", help="classify pose sequences or a video with a fine-tuned or packaged classifier",
                       description="classify an annotation pickle, an array [M, T, V, C] (.npy) or a video (poses "
                       "from MediaPipe, here or in the pose environment .venv-pose, which `make .venv-pose/.installed` "
                       "builds; SKELETONMAE_POSE_PYTHON names another) with a fine-tuned checkpoint or a packaged "
                       "classifier; prints the top-k classes and writes a JSON, for a video with a timeline: sliding "
                       "windows classified per tracked person")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", metavar="CKPT", help="a fine-tuning checkpoint (RUN/checkpoints/last.ckpt)")
    model.add_argument("--model", metavar="NAME", help="a packaged classifier, to use without training (the "
                       "package's, see skeletonmae/classifiers/README.md, and those in the folders the environment "
                       "variable SKELETONMAE_CLASSIFIERS names), or a packaged classifier file")
    p.add_argument("input", help=".pkl, .npy or a video file")
    p.add_argument("--layout", help="layout of the input (default: the one the model was trained on)")
    p.add_argument("--split", help="split of a .pkl input (default: every clip)")
    p.add_argument("--score", metavar="NPY", help="keypoint scores [M, T, V] for a 2D .npy input")
    p.add_argument("--img-shape", type=int, nargs=2, metavar=("H", "W"), help="frame size of a 2D .npy input")
    p.add_argument("--top-k", type=count, default=5, help="classes to show per clip (default 5)")
    p.add_argument("--out", default="predictions.json", help="JSON output (default predictions.json)")
    p.add_argument("--window", type=count, metavar="FRAMES",
                   help=f"also classify sliding windows of this many frames per tracked person: a timeline in the "
                   f"JSON (default {VIDEO_WINDOW} for a video; a .pkl gets one only when given)")
    p.add_argument("--stride", type=count, metavar="FRAMES", help="frames between window starts (default window/2)")
    p.add_argument("--fps", type=float, help="frames per second of a .pkl input, for times in seconds (a video "
                   "gives its own)")
    p.add_argument("--timeline-png", metavar="PNG", help="draw the timeline as a strip chart")
    p.add_argument("--persons", type=count, default=2, help="people to look for in each frame of a video "
                   "(default 2; each more costs one more pass of MediaPipe)")
    p.add_argument("--poses", metavar="PKL", help="keep the poses extracted from a video in this annotation pickle")
    p.set_defaults(func=cmd_predict)
    return p
