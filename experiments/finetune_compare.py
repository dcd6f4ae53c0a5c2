"""Does pre-training make the classifier better? Fine-tune SSL with and without SkeletonMAE pre-training.

Same budget, same seeds, same data for every row; with all training labels and with a stratified share
of them. A share f trains for epochs / f epochs, so every row takes the same number of optimiser steps.
Every table also carries the trivial baseline (logistic regression on per-joint statistics of the
normalised coordinates and their velocity, fit on the same labelled clips).

    python experiments/finetune_compare.py --config penn_action --epochs 30 --seeds 0 1 2 \
        --checkpoint runs/pre/penn_action_train/checkpoints/last.ckpt --checkpoint runs/pre/pool/checkpoints/last.ckpt

fine-tunes from each ``--checkpoint`` (the corpus it was pre-trained on is read from it and shown) and from
scratch; without ``--checkpoint`` it pre-trains on the training split first (``--pretrain-epochs``).
Test clips that are bit-identical copies of training clips (NW-UCLA has 95) are found, and the accuracy
without them is reported beside the plain one. Writes ``results/<dataset>_finetune<name>.json`` (one row
per run, after every run) and prints the table. Runs whose ``metrics.json`` exists are read back, not run
again (:func:`skeletonmae.grid.run_grid`), so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from skeletonmae.config import Config, load_config
from skeletonmae.data.check import duplicated_clips
from skeletonmae.data.dataset import SkeletonData, stratified_subset
from skeletonmae.grid import GridRun, run_grid
from skeletonmae.models.build import load_checkpoint
from skeletonmae.results import render_markdown, write_results
from skeletonmae.tasks.pretrain import run_pretrain
from skeletonmae.tasks.probe import extract_features, linear_probe


def corpus_of(checkpoint: dict) -> str:
    """'<data file>: <splits>' that a (loaded) pre-training checkpoint was trained on."""
    cfg = Config.from_dict(checkpoint["hyper_parameters"]["config"])
    return f"{Path(cfg.data.path).stem}: {' + '.join(cfg.pretrain.splits or [cfg.data.train_split])}"


def unique_metrics(predictions: Path, duplicates: set[str]) -> dict:
    """top1 / mean class accuracy over the test clips of ``predictions.csv`` that are not in ``duplicates``."""
    rows = [r for r in csv.DictReader(predictions.open()) if r["frame_dir"] not in duplicates]
    label, pred = np.array([int(r["label"]) for r in rows]), np.array([int(r["pred"]) for r in rows])
    return {"top1_unique": float((label == pred).mean()),
            "mean_class_acc_unique": float(balanced_accuracy_score(label, pred))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="penn_action")
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=30, help="epochs with all labels (a share f: epochs / f)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="a pre-training checkpoint to fine-tune from (repeatable; default: pre-train here)")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--results", default="results")
    parser.add_argument("--name", default="", help="results file suffix (default: none)")
    parser.add_argument("--only-pretrained", action="store_true",
                        help="run only the pre-trained rows (a variant of a table that already has the others)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    command = "python experiments/finetune_compare.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    base = ["trainer.progress=false", "trainer.resume=true", *args.overrides]
    cfg = load_config(args.config, base)
    dataset = Path(cfg.data.path).stem
    out = Path(args.out)
    checkpoints = list(args.checkpoint)
    if not checkpoints:
        pre_cfg = load_config(args.config, base + [
            f"pretrain.epochs={args.pretrain_epochs}", "pretrain.batch_size=32", "pretrain.lr=1e-3",
            f"trainer.out_dir={out / (dataset + '_pretrain')}"])
        checkpoints = [str(run_pretrain(pre_cfg))]
    loaded = [load_checkpoint(c) for c in checkpoints]
    methods = [(f"pre{i}", c, corpus_of(ckpt), ckpt["epoch"] + 1)
               for i, (c, ckpt) in enumerate(zip(checkpoints, loaded, strict=True))]
    if not args.only_pretrained:
        methods.append(("scratch", "none", "none", 0))

    dm = SkeletonData(cfg, 32)
    duplicates = set(duplicated_clips(dm.train_samples(), dm.test_samples()))
    if duplicates:
        print(f"{len(duplicates)} test clips duplicate training clips; accuracy without them is reported too")
    if not args.only_pretrained:
        feats_train = extract_features(dm.train_samples(), dm, None)
        feats_test = extract_features(dm.test_samples(), dm, None)
        unique = np.array([s["frame_dir"] not in duplicates for s in dm.test_samples()])
    path = Path(args.results) / f"{dataset}_finetune{args.name}.json"

    def write(rows: list[dict]) -> Path:
        return write_results(
            path, f"Fine-tuning on {dataset}: SkeletonMAE pre-training vs from scratch", command, rows,
            columns=["method", "corpus", "label_fraction", "epochs"],
            metrics=["top1", "mean_class_acc"] + (["top1_unique", "mean_class_acc_unique"] if duplicates else []))

    def row(run: GridRun, report: dict, seconds: float) -> dict:
        name = "SSL, from scratch"
        if run.info["pretrained"] != "none":
            name = "SSL, SkeletonMAE pre-trained"
            if cfg.finetune.pretrained_layers != "all":
                name += f" (G_E in the {cfg.finetune.pretrained_layers} STRL layer only)"
        metrics = {k: report[k] for k in ("top1", "top5", "mean_class_acc")}
        if duplicates:
            metrics.update(unique_metrics(run.finetune_dir / "predictions.csv", duplicates))
        return {**run.info["common"], "method": name, "corpus": run.info["corpus"],
                "pretrained": run.info["pretrained"] != "none", "pretrain_epochs": run.info["pretrain_epochs"],
                "metrics": metrics, "wall_seconds": report.get("train_seconds", 0)}

    rows = []
    for fraction in args.fractions:
        e = round(args.epochs / fraction)
        # A short schedule keeps the paper's shape: warm-up, then lr / 10 at ~80 % and ~90 % of training.
        recipe = [f"finetune.epochs={e}", f"finetune.warmup_epochs={max(1, e // 20)}",
                  f"finetune.milestones=[{int(e * 0.8)}, {int(e * 0.9)}]", "finetune.batch_size=32"]
        for seed in args.seeds:
            common = {"dataset": dataset, "split": cfg.data.test_split, "protocol": "finetune",
                      "label_fraction": fraction, "seed": seed, "epochs": e}
            if not args.only_pretrained:  # trivial baseline on the labelled clips of this seed's runs
                labelled = stratified_subset([{"label": int(y), "i": i} for i, y in enumerate(feats_train[1])],
                                             fraction=fraction, seed=seed)
                keep = [s["i"] for s in labelled]
                start = time.time()
                metrics = linear_probe((feats_train[0][keep], feats_train[1][keep]), feats_test)
                if duplicates:
                    plain = linear_probe((feats_train[0][keep], feats_train[1][keep]),
                                         (feats_test[0][unique], feats_test[1][unique]))
                    metrics.update(top1_unique=plain["top1"], mean_class_acc_unique=plain["mean_class_acc"])
                rows.append({**common, "method": "coordinate statistics + logistic regression", "corpus": "none",
                             "pretrained": False, "metrics": metrics, "wall_seconds": round(time.time() - start, 1)})
            runs = []
            for tag, pretrained, corpus, pretrain_epochs in methods:
                overrides = base + recipe + [f"finetune.pretrained={pretrained}", f"trainer.seed={seed}",
                                             f"data.label_seed={seed}", f"data.label_fraction={fraction}"]
                info = {"common": common, "pretrained": pretrained, "corpus": corpus,
                        "pretrain_epochs": pretrain_epochs}
                runs.append(GridRun(out / f"{dataset}_ft_{tag}_f{fraction}_s{seed}", args.config, overrides, info=info))
            run_grid(runs, row, write, rows=rows)  # after this seed's baseline row
    print(render_markdown(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
