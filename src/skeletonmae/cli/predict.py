"""The ``predict`` command: classify an annotation pickle, an array or a video with a fine-tuned checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SkeletonMAEError
from . import count

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm")


def cmd_predict(args) -> int:
    import json

    import numpy as np

    from ..data.annotations import load_annotations
    from ..errors import DataError
    from ..fileio import atomic_open, check_output
    from ..inference import load

    inputs = [args.checkpoint, args.input] + ([args.score] if args.score else [])
    check_output(args.out, inputs)
    predictor = load(args.checkpoint)
    path = Path(args.input)
    layout = args.layout
    if path.suffix == ".pkl":
        samples = load_annotations(path, layout=layout or predictor.cfg.data.layout, labelled=False).samples(args.split)
        results = predictor.predict_samples(samples, layout=layout, top_k=args.top_k)
    elif path.suffix == ".npy":
        keypoint = _load_array(path)
        score = _load_array(args.score) if args.score else None
        results = [{"frame_dir": path.stem, **predictor.predict(keypoint, score, args.img_shape, layout, args.top_k)}]
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        from ..pose import extract_poses

        try:
            clip = extract_poses(path, max_persons=predictor.cfg.data.num_persons)
        except SkeletonMAEError as e:
            raise SkeletonMAEError(
                f"{e}\nOr in two steps: `.venv-pose/bin/python -m skeletonmae.cli.pose {path} --out clip.pkl`, "
                f"then `skeletonmae predict --checkpoint {args.checkpoint} clip.pkl --layout coco17`."
            ) from e
        results = predictor.predict_samples([clip], layout="coco17", top_k=args.top_k)
        results[0].pop("label", None)
    else:
        raise DataError(f"{path}: unknown input kind '{path.suffix}'; give an annotation pickle (.pkl), an array "
                        f"[M, T, V, C] (.npy) or a video ({', '.join(VIDEO_SUFFIXES)})")
    for r in results[:10]:
        top = ", ".join(f"{name} {p:.3f}" for name, p in r["top"])
        print(f"{r['frame_dir']}: {top}")
    if len(results) > 10:
        print(f"... {len(results) - 10} more clips")
    labelled = [r for r in results if "label" in r]
    if labelled:
        acc = np.mean([int(np.argmax(r["scores"])) == r["label"] for r in labelled])
        print(f"top-1 against the file's labels: {acc:.4f} ({len(labelled)} clips)")
    with atomic_open(args.out, "w", inputs=inputs) as f:
        json.dump({"checkpoint": str(args.checkpoint), "input": str(path), "class_names": predictor.class_names,
                   "predictions": results}, f, indent=1)
    print(f"written: {args.out}")
    return 0


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
    p = sub.add_parser("predict", help="classify pose sequences or a video with a fine-tuned checkpoint",
                       description="classify an annotation pickle, an array [M, T, V, C] (.npy) or a video (poses "
                       "from MediaPipe, see requirements-pose.txt) with a fine-tuned checkpoint; prints the top-k "
                       "classes and writes a JSON")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("input", help=".pkl, .npy or a video file")
    p.add_argument("--layout", help="layout of the input (default: the one the model was trained on)")
    p.add_argument("--split", help="split of a .pkl input (default: every clip)")
    p.add_argument("--score", metavar="NPY", help="keypoint scores [M, T, V] for a 2D .npy input")
    p.add_argument("--img-shape", type=int, nargs=2, metavar=("H", "W"), help="frame size of a 2D .npy input")
    p.add_argument("--top-k", type=count, default=5, help="classes to show per clip (default 5)")
    p.add_argument("--out", default="predictions.json", help="JSON output (default predictions.json)")
    p.set_defaults(func=cmd_predict)
    return p
