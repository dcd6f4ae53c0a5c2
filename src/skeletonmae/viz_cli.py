"""The ``visualize`` command's parser. Kept apart from :mod:`skeletonmae.viz` so that building the CLI does
not import matplotlib and torch; each action imports the figure code when it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import import_module


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return getattr(import_module("skeletonmae.viz"), name)(args)

    return run


def add_visualize_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``visualize`` command (reconstruction, pca, confusion, curves) to a CLI's subparsers."""
    vis = subparsers.add_parser("visualize", help="draw figures (reconstruction, PCA, confusion, curves) as PNG",
                                description="draw the paper's figures as PNG files: reconstructions of masked "
                                "skeletons (Fig. 6), 2D PCA of representations (Fig. 4a/b), a confusion matrix "
                                "(Fig. 4c), and training curves")
    vsub = vis.add_subparsers(dest="visualize_command", metavar="FIGURE", required=True)

    p = vsub.add_parser("reconstruction", help="input / masked input / reconstruction of one clip (Fig. 6)",
                        description="input, masked input and SkeletonMAE reconstruction of one test clip at "
                        "evenly spaced frames (needs a pre-training checkpoint with target coords or window)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training checkpoint")
    p.add_argument("--data", metavar="PKL", help="annotation pickle (default: the one in the checkpoint's config)")
    p.add_argument("--split", help="split name (default: data.test_split)")
    p.add_argument("--index", type=int, default=0, metavar="N", help="clip index in the split (default 0)")
    p.add_argument("--frames", type=int, default=4, help="frames (columns) to show (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn mask (default 0)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=_lazy("cmd_reconstruction"))

    p = vsub.add_parser("pca", help="2D PCA of clip representations of a few classes (Fig. 4a/b)",
                        description="2D PCA of clip representations: pooled encoder features for a "
                        "pre-training checkpoint, SSL features for a fine-tuning checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training or fine-tuning checkpoint")
    p.add_argument("--data", metavar="PKL", help="annotation pickle (default: the one in the checkpoint's config)")
    p.add_argument("--split", help="split name (default: data.test_split)")
    p.add_argument("--classes", type=int, nargs="+", metavar="ID", help="class ids to show (default: first 5)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=_lazy("cmd_pca"))

    p = vsub.add_parser("confusion", help="confusion matrix from a metrics.json (Fig. 4c)",
                        description="confusion matrix from the metrics.json that fine-tuning or testing wrote")
    p.add_argument("--metrics", required=True, metavar="JSON", help="metrics.json with a 'confusion' key")
    p.add_argument("--labels", metavar="TXT", help="label_map.txt, one class name per line (default: beside the "
                   "data file of the run's config.yaml, if any)")
    p.add_argument("--counts", action="store_true", help="show clip counts instead of row-normalised shares")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=_lazy("cmd_confusion"))

    p = vsub.add_parser("curves", help="training curves of a run (loss, accuracy)",
                        description="training curves from RUN/logs/metrics.csv")
    p.add_argument("--run", required=True, metavar="DIR", help="output directory of a pretrain / finetune run")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=_lazy("cmd_curves"))
    return vis
