"""Ensembles of input streams: one classifier per stream (joint, bone, joint motion, bone motion), fused.

    # 1. train: each stream with the dataset's packaged config (its recipe was chosen on validation), seed 0,
    #    20 % of the training split held out for validation (the same carve for every stream: data.val_seed 0,
    #    by subject where the config says so); each run writes its test and validation class scores
    OMP_NUM_THREADS=1 python experiments/stream_ensemble.py train --datasets nw_ucla --streams joint bone
    OMP_NUM_THREADS=1 python experiments/stream_ensemble.py train --datasets nw_ucla --streams joint_motion bone_motion
    # 2. fuse: `skeletonmae ensemble` chooses the fusion weights on the validation scores and applies them once to
    #    the test scores; results/ensemble_<dataset>.json holds each stream's test top-1 and the ensemble's
    python experiments/stream_ensemble.py ensemble --datasets nw_ucla

Streams can be split between processes (one thread each); every run resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from skeletonmae.cli import main as skeletonmae
from skeletonmae.grid import GridRun, run_grid
from skeletonmae.results import write_results

STREAMS = ["joint", "bone", "joint_motion", "bone_motion"]
DATASETS = ["nw_ucla", "utkinect", "florence3d"]
VALIDATION = ["data.val_fraction=0.2", "data.val_seed=0"]  # the same carve for every stream
COMMON = ["trainer.seed=0", "trainer.progress=false", "trainer.resume=true", "data.num_workers=0"]


def run_dir(out: Path, dataset: str, stream: str) -> Path:
    return out / dataset / stream


def train(datasets: list[str], streams: list[str], out: Path) -> None:
    """Fine-tune and test one classifier per (dataset, stream); finished runs are skipped."""
    runs = [GridRun(run_dir(out, d, s), d, [f"data.stream={s}", *VALIDATION, *COMMON]) for d in datasets
            for s in streams]
    run_grid(runs, lambda run, report, seconds: {})


def fuse(dataset: str, streams: list[str], out: Path, results: Path, command: str) -> Path:
    """Run ``skeletonmae ensemble`` on the streams' runs; write results/ensemble_<dataset>.json from its report."""
    runs = [run_dir(out, dataset, s) for s in streams]
    fused = out / dataset / "ensemble"
    if skeletonmae(["ensemble", *map(str, runs), "--out", str(fused)]) != 0:
        raise SystemExit(f"skeletonmae ensemble failed for {dataset}")
    report = json.loads((fused / "metrics.json").read_text())
    rows = [{"dataset": dataset, "method": f"{stream} stream", "weight": f"{run['weight']:.2f}",
             "metrics": {"top1": run["top1"], "mean_class_acc": run["mean_class_acc"], "val_top1": run["val_top1"]},
             "seed": 0, "run": run["run"]} for stream, run in zip(streams, report["runs"], strict=True)]
    rows.append({"dataset": dataset, "method": f"ensemble of {len(streams)} streams (weights chosen on validation)",
                 "weight": "-", "metrics": {k: report[k] for k in ("top1", "mean_class_acc", "val_top1")}, "seed": 0,
                 "run": str(fused)})
    rows.append({"dataset": dataset, "method": f"ensemble of {len(streams)} streams, equal weights (reference)",
                 "weight": f"{1 / len(streams):.2f}", "metrics": {k: report["equal_weights"][k] for k in
                                                                 ("top1", "mean_class_acc", "val_top1")},
                 "seed": 0, "run": str(fused)})
    return write_results(results / f"ensemble_{dataset}.json", f"Ensemble of input streams on {dataset} (test "
                         f"split {report['split']}; fusion weights chosen on {report['weights_chosen_on']})",
                         command, rows, ["dataset", "method", "weight"], ("top1", "mean_class_acc", "val_top1"),
                         extra={"fusion": report["fusion"], "weights_chosen_on": report["weights_chosen_on"]})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["train", "ensemble"])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=["nw_ucla"])
    p.add_argument("--streams", nargs="+", choices=STREAMS, default=STREAMS)
    p.add_argument("--out", type=Path, default=Path("runs/stream_ensemble"))
    p.add_argument("--results", type=Path, default=Path("results"))
    args = p.parse_args(argv)
    command = "python experiments/stream_ensemble.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.stage == "train":
        train(args.datasets, args.streams, args.out)
    else:
        for dataset in args.datasets:
            print(f"written: {fuse(dataset, args.streams, args.out, args.results, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
