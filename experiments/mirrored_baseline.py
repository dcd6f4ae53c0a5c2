"""Does mirroring alone explain a gain? The trivial baseline, also given every clip's mirror image.

The logistic regression of ``finetune_compare.py`` (per-joint statistics of the normalised coordinates and
their velocity, one deterministic clip per sample) is fit twice on the same labelled clips (same stratified
subset per seed): as there, and with the mirror image of every labelled clip added (``data.flip``'s
operation: x -> -x, each left joint swapped with its right twin), its test probabilities averaged over each
clip and its mirror image. Pass the data overrides of the table it is read beside.

    python experiments/mirrored_baseline.py --config jhmdb14 data.normalize=auto data.test_clips=2

Writes ``results/<dataset>_mirrored_baseline.json`` (one row per seed and fraction) and prints the table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from skeletonmae.config import load_config
from skeletonmae.data.check import duplicated_clips
from skeletonmae.data.dataset import SkeletonData, stratified_subset
from skeletonmae.results import render_markdown, write_results
from skeletonmae.tasks.probe import extract_features, linear_probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="penn_action")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--results", default="results")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    command = "python experiments/mirrored_baseline.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    cfg = load_config(args.config, [*args.overrides, "data.test_flip=true"])
    dm = SkeletonData(cfg, 32)
    dataset = Path(cfg.data.path).stem
    mirror = cfg.data.test_clips  # the test pipeline's clip k + K is the mirror image of clip k
    train = [extract_features(dm.train_samples(), dm, None, clip=c) for c in (0, mirror)]
    test = [extract_features(dm.test_samples(), dm, None, clip=c) for c in (0, mirror)]
    labels = test[0][1]
    duplicates = set(duplicated_clips(dm.train_samples(), dm.test_samples()))
    unique = np.array([s["frame_dir"] not in duplicates for s in dm.test_samples()])

    def probe(keep: list[int], mirrored: bool, rows: np.ndarray) -> dict:
        views = 2 if mirrored else 1  # the clip, then its mirror image
        fit = (np.concatenate([x[keep] for x, _ in train[:views]]), np.concatenate([y[keep] for _, y in train[:views]]))
        return linear_probe(fit, ([x[rows] for x, _ in test[:views]], labels[rows]))

    rows = []
    for fraction in args.fractions:
        for seed in args.seeds:
            labelled = stratified_subset([{"label": int(y), "i": i} for i, y in enumerate(train[0][1])],
                                         fraction=fraction, seed=seed)
            keep = [s["i"] for s in labelled]
            for mirrored in (False, True):
                start = time.time()
                metrics = probe(keep, mirrored, np.arange(len(labels)))
                if duplicates:
                    kept = probe(keep, mirrored, np.flatnonzero(unique))
                    metrics.update(top1_unique=kept["top1"], mean_class_acc_unique=kept["mean_class_acc"])
                method = "coordinate statistics + logistic regression"
                rows.append({"dataset": dataset, "split": cfg.data.test_split, "protocol": "baseline",
                             "label_fraction": fraction, "seed": seed,
                             "method": method + (", with mirror images" if mirrored else ""),
                             "metrics": metrics, "wall_seconds": round(time.time() - start, 1)})
    path = write_results(Path(args.results) / f"{dataset}_mirrored_baseline.json",
                         f"The trivial baseline on {dataset}, with and without mirror images", command, rows,
                         columns=["method", "label_fraction"],
                         metrics=["top1", "mean_class_acc"] + (["top1_unique", "mean_class_acc_unique"]
                                                               if duplicates else []))
    print(render_markdown(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
