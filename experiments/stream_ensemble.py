"""Ensembles of input streams: one classifier per stream (joint, bone, joint motion, bone motion), fused.

    # 1. train: each stream with the dataset's packaged config (its recipe was chosen on validation), seed 0,
    #    20 % of the training split held out for validation (the same carve for every stream: data.val_seed 0,
    #    by subject where the config says so); each run writes its test and validation class scores
    OMP_NUM_THREADS=1 python experiments/stream_ensemble.py train --datasets nw_ucla --streams joint bone
    OMP_NUM_THREADS=1 python experiments/stream_ensemble.py train --datasets nw_ucla --streams joint_motion bone_motion
    # 2. (optional) the same streams on the whole training split, no validation part
    OMP_NUM_THREADS=1 python experiments/stream_ensemble.py train --whole-split --datasets nw_ucla --streams joint bone
    # 3. fuse: `skeletonmae ensemble` chooses the fusion weights on the validation scores and applies them once to
    #    the test scores; the whole-split runs of step 2, where they exist, are fused with those same weights;
    #    results/ensemble_<dataset>.json holds each stream's test top-1 and the ensembles'
    python experiments/stream_ensemble.py ensemble --datasets nw_ucla

Streams can be split between processes (one thread each); every run resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from skeletonmae.cli import main as skeletonmae
from skeletonmae.ensemble import fuse
from skeletonmae.grid import GridRun, run_grid
from skeletonmae.metrics import classification_metrics
from skeletonmae.results import write_results
from skeletonmae.scores import TEST_SCORES, read_scores

STREAMS = ["joint", "bone", "joint_motion", "bone_motion"]
DATASETS = ["nw_ucla", "utkinect", "florence3d"]
VALIDATION = ["data.val_fraction=0.2", "data.val_seed=0"]  # the same carve for every stream
COMMON = ["trainer.seed=0", "trainer.progress=false", "trainer.resume=true", "data.num_workers=0"]


def run_dir(out: Path, dataset: str, stream: str, whole: bool = False) -> Path:
    """A stream's run: trained on 80 % of the training split (20 % held out), or with ``whole`` on all of it."""
    return out / dataset / "whole" / stream if whole else out / dataset / stream


def train(datasets: list[str], streams: list[str], out: Path, whole: bool) -> None:
    """Fine-tune and test one classifier per (dataset, stream); finished runs are skipped."""
    carve = [] if whole else VALIDATION
    runs = [GridRun(run_dir(out, d, s, whole), d, [f"data.stream={s}", *carve, *COMMON]) for d in datasets
            for s in streams]
    run_grid(runs, lambda run, report, seconds: {})


def row(dataset: str, method: str, training: str, weight: str, metrics: dict, run: str) -> dict:
    return {"dataset": dataset, "method": method, "training": training, "weight": weight, "seed": 0, "run": run,
            "metrics": {k: metrics[k] for k in ("top1", "mean_class_acc", "val_top1") if k in metrics}}


def whole_split_rows(dataset: str, streams: list[str], out: Path, report: dict) -> list[dict]:
    """The streams trained on the whole training split, fused with the weights chosen on validation (by the runs
    that held it out); none where those runs are missing."""
    paths = [run_dir(out, dataset, s, whole=True) / TEST_SCORES for s in streams]
    if not all(p.is_file() for p in paths):
        return []
    scores = [read_scores(p) for p in paths]
    carved = read_scores(run_dir(out, dataset, streams[0]) / TEST_SCORES)
    if any(s.ids != carved.ids or not np.array_equal(s.labels, carved.labels) for s in scores):
        raise SystemExit(f"{dataset}: the whole-split runs were tested on other samples than the carved ones")
    weights = np.array(report["weights"])
    fused = classification_metrics(fuse(np.stack([s.probs for s in scores]), weights), carved.labels)
    whole = "whole training split"
    rows = [row(dataset, f"{stream} stream", whole, f"{w:.2f}", classification_metrics(s.probs, s.labels),
                str(p.parent)) for stream, s, p, w in zip(streams, scores, paths, weights, strict=True)]
    return rows + [row(dataset, f"ensemble of {len(streams)} streams, the weights chosen on validation above", whole,
                       "-", fused, str(out / dataset / "whole"))]


def fuse_streams(dataset: str, streams: list[str], out: Path, results: Path, command: str) -> Path:
    """Run ``skeletonmae ensemble`` on the streams' runs; write results/ensemble_<dataset>.json from its report
    (with the whole-split runs fused by the same weights, where they exist)."""
    runs = [run_dir(out, dataset, s) for s in streams]
    fused = out / dataset / "ensemble"
    if skeletonmae(["ensemble", *map(str, runs), "--out", str(fused)]) != 0:
        raise SystemExit(f"skeletonmae ensemble failed for {dataset}")
    report = json.loads((fused / "metrics.json").read_text())
    carved = "80 % (20 % held out)"
    rows = [row(dataset, f"{stream} stream", carved, f"{run['weight']:.2f}", run, run["run"])
            for stream, run in zip(streams, report["runs"], strict=True)]
    rows.append(row(dataset, f"ensemble of {len(streams)} streams (weights chosen on validation)", carved, "-", report,
                    str(fused)))
    rows.append(row(dataset, f"ensemble of {len(streams)} streams, equal weights (reference)", carved,
                    f"{1 / len(streams):.2f}", report["equal_weights"], str(fused)))
    rows += whole_split_rows(dataset, streams, out, report)
    return write_results(results / f"ensemble_{dataset}.json", f"Ensemble of input streams on {dataset} (test "
                         f"split {report['split']}; fusion weights chosen on {report['weights_chosen_on']})",
                         command, rows, ["dataset", "method", "training", "weight"], ("top1", "mean_class_acc"),
                         extra={"fusion": report["fusion"], "weights": report["weights"],
                                "weights_chosen_on": report["weights_chosen_on"],
                                "val_top1_of_the_chosen_weights": report["val_top1"]})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["train", "ensemble"])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=["nw_ucla"])
    p.add_argument("--streams", nargs="+", choices=STREAMS, default=STREAMS)
    p.add_argument("--out", type=Path, default=Path("runs/stream_ensemble"))
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--whole-split", action="store_true", help="train: on the whole training split (no validation "
                   "part); ensemble fuses these runs with the weights chosen on the held-out runs' validation")
    args = p.parse_args(argv)
    command = "python experiments/stream_ensemble.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.stage == "train":
        train(args.datasets, args.streams, args.out, args.whole_split)
    else:
        for dataset in args.datasets:
            print(f"written: {fuse_streams(dataset, args.streams, args.out, args.results, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
