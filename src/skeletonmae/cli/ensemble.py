"""The ``ensemble`` command: fuse the class scores of several runs (e.g. one per input stream, ``data.stream``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _weight_step(text: str) -> float:
    """An argparse type: a step in (0, 1] that divides 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.1, got {text!r}") from None
    if not 0 < value <= 1 or abs(round(1 / value) * value - 1) > 1e-9:
        raise argparse.ArgumentTypeError(f"expected a step in (0, 1] that divides 1 (0.1, 0.05, 0.25), got {value}")
    return value


def cmd_ensemble(args) -> int:
    from ..ensemble import ensemble
    from ..fileio import atomic_open
    from ..scores import TEST_SCORES, write_predictions, write_scores

    out = Path(args.out)
    report, fused = ensemble(args.runs, args.step)
    with atomic_open(out / "metrics.json", "w", inputs=args.runs) as f:
        json.dump(report, f, indent=1)
    write_predictions(out / "predictions.csv", fused)
    write_scores(out / TEST_SCORES, fused)
    for run in report["runs"]:
        print(f"  {run['run']} ({run['stream']}): weight {run['weight']:.2f}  test top1 {run['top1']:.4f}  "
              f"validation top1 {run['val_top1']:.4f}")
    print(f"ensemble on {report['split']}: top1 {report['top1']:.4f}  mean class acc {report['mean_class_acc']:.4f}"
          f"  (weights chosen on {report['weights_chosen_on']}: top1 {report['val_top1']:.4f}) -> {out}/metrics.json")
    return 0


def add_ensemble_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``ensemble`` subcommand to an argparse subparsers object; returns its parser."""
    desc = ("fuse the class scores of fine-tuning runs (e.g. one per input stream: data.stream=joint, bone, "
            "joint_motion, bone_motion): a weighted mean of their softmax probabilities, the weights chosen on "
            "the runs' validation scores (grid over the simplex; ties -> equal weights), then applied once to "
            "the test scores. The runs must share data, splits and validation carve (train them with "
            "data.val_fraction > 0). Writes OUT/metrics.json, OUT/predictions.csv and OUT/scores.csv")
    p = subparsers.add_parser("ensemble", help="fuse runs' class scores, weights chosen on validation",
                              description=desc)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (--out of finetune), at least two")
    p.add_argument("--out", required=True, metavar="DIR", help="where metrics.json and predictions.csv go")
    p.add_argument("--step", type=_weight_step, default=0.1, help="grid step of the weights (default 0.1)")
    p.set_defaults(func=cmd_ensemble)
    return p
