"""Does the packaged encoder make fine-tuning better? Recipes chosen on validation, then the test split once.

    # 1. recipes: every grid cell on each dataset's validation split (20 % of its training split, by subject where
    #    clip names carry one), fine-tuned from the pre-trained encoder and from scratch, seed 0, all labels
    OMP_NUM_THREADS=1 python experiments/encoder_benefit.py select --datasets penn_action jhmdb14
    # 2. how long to pre-train: each stage's checkpoint on validation with the dataset's chosen recipe
    OMP_NUM_THREADS=1 python experiments/encoder_benefit.py stages --datasets nw_ucla utkinect florence3d
    #    a lower learning rate for the loaded encoder (finetune.encoder_lr_scale), on validation, against scratch
    OMP_NUM_THREADS=1 python experiments/encoder_benefit.py lr --datasets utkinect florence3d
    # 3. the tables: each dataset's packaged config (holding its chosen recipe), full and 10 % labels, 3 seeds,
    #    packaged encoder vs from scratch, same recipe and steps; the statistics baselines and the frozen encoder's
    #    linear probe, their settings chosen on the same validation split; the test split run once per row
    OMP_NUM_THREADS=1 python experiments/encoder_benefit.py final --datasets penn_action

    # 4. the headline table and the acceptance check of the targets, from the tables of step 3
    python experiments/encoder_benefit.py summary

Writes ``results/recipe_selection.json`` (validation top-1 of every cell, the choice per dataset and the
leave-one-dataset-out choice), ``results/encoder_stages.json``, ``results/encoder_<dataset>.json`` and
``results/encoder_lr_scale.json``, ``results/encoder_summary.json``.
Datasets can be split between processes (one thread each); every run resumes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from skeletonmae.config import load_config
from skeletonmae.data.dataset import SkeletonData, stratified_subset
from skeletonmae.grid import GridRun, run_grid
from skeletonmae.models.build import ENCODERS, load_encoder
from skeletonmae.models.encoder import JointEncoder
from skeletonmae.results import write_results
from skeletonmae.tasks.probe import extract_features, linear_probe

DATASETS = {"penn_action": "2d", "jhmdb14": "2d", "nw_ucla": "3d", "utkinect": "3d", "florence3d": "3d"}
ENCODER_FILES = {"2d": "coco17_2d", "3d": "kinect20_3d"}
VALIDATION = ["data.val_fraction=0.2", "finetune.test=false"]
# The recipe grid: mirroring, weight decay, stochastic depth (simplest first: ties keep the earlier cell).
GRID = {"data.flip": [0.0, 0.5], "finetune.weight_decay": [5e-4, 5e-3], "classifier.drop_path": [0.0, 0.5]}
EPOCHS = 30  # with all labels; a share f of the labels trains for 30 / f epochs (the same optimiser steps)
C_GRID = [0.01, 0.1, 1.0, 10.0]
NORMALIZE = {"2d": ["fix", "auto", "body"], "3d": ["auto", "body"]}  # 3D 'fix' = 'auto' (the RMS default)
STAGES = {"2d": [5, 10, 20], "3d": [15, 30, 60]}
LR_SCALES = [1.0, 0.3, 0.1]  # finetune.encoder_lr_scale: 1 = the paper (one learning rate for every layer)
# The tables' train/test splits: JHMDB's three, each dataset's packaged split elsewhere (recipes were chosen on
# the packaged split's validation part).
SPLITS = {"jhmdb14": [["data.train_split=train1", "data.test_split=test1"],
                      ["data.train_split=train2", "data.test_split=test2"],
                      ["data.train_split=train3", "data.test_split=test3"]]}
COMMON = ["trainer.progress=false", "trainer.resume=true", "data.num_workers=0"]


def schedule(dataset: str, fraction: float, validation: bool = False, split: list[str] = ()) -> list[str]:
    """Epochs (30 / f), warm-up, then lr / 10 at 80 % and 90 % of training (the paper's shape); batches of 32
    clips, or all of them when fewer are labelled (lr scales with the batch)."""
    e = round(EPOCHS / fraction)
    cfg = load_config(dataset, [*split, f"data.label_fraction={fraction}", *(VALIDATION if validation else [])])
    batch = min(cfg.finetune.batch_size, len(SkeletonData(cfg, 1).train_samples()))
    return [f"finetune.epochs={e}", f"finetune.warmup_epochs={max(1, e // 20)}",
            f"finetune.milestones=[{int(e * 0.8)}, {int(e * 0.9)}]", f"finetune.batch_size={batch}"]


def cells() -> list[list[str]]:
    return [[f"{k}={v}" for k, v in zip(GRID, values, strict=True)] for values in itertools.product(*GRID.values())]


def encoder_path(modality: str) -> str:
    return str(ENCODERS / f"{ENCODER_FILES[modality]}.pt")


def last_stage(modality: str) -> str:
    return f"runs/encoders/{modality}/stage_{STAGES[modality][-1]}.ckpt"


def select(datasets: list[str], out: Path, results: Path, command: str, methods: list[str]) -> None:
    """Every cell x (pre-trained, scratch) on validation; the choice per dataset and left-one-dataset-out."""
    path = results / "recipe_selection.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows = [r for r in old if not (r["dataset"] in datasets and r["method"] in methods)]
    runs = []
    for dataset in datasets:
        recipe = [*COMMON, *VALIDATION, *schedule(dataset, 1.0, True)]
        for i, cell in enumerate(cells()):
            for method, pretrained in (("pretrained", last_stage(DATASETS[dataset])), ("scratch", "none")):
                if method not in methods:
                    continue
                overrides = [*recipe, *cell, f"finetune.pretrained={pretrained}"]
                runs.append(GridRun(out / "select" / dataset / f"cell{i}_{method}", dataset, overrides,
                                    info={"dataset": dataset, "cell": " ".join(cell), "method": method}))

    def row(run: GridRun, report: dict, seconds: float) -> dict:
        return {**run.info, "split": "validation", "seed": 0, "label_fraction": 1.0,
                "metrics": {"top1": report["val_top1"]}, "val_clips": report["val_clips"],
                "wall_seconds": report.get("train_seconds", 0)}

    def write(rows: list[dict]) -> None:
        write_results(path, "Recipe selection on validation (20 % of each training split)", command, rows,
                      columns=["dataset", "cell", "method"], metrics=["top1"], extra={"choices": choices(rows)})

    run_grid(runs, row, write, rows=rows)
    print(json.dumps(json.loads(path.read_text())["choices"], indent=1))


def choices(rows: list[dict]) -> dict:
    """The cell with the best mean validation top-1 per dataset (over the methods run: pre-trained and scratch,
    or scratch alone, which chooses without favouring pre-training); the cell chosen on the other datasets
    (leave-one-dataset-out) and what it scores on this one; the cell chosen on all."""
    names = [" ".join(c) for c in cells()]
    scores: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        scores.setdefault(r["dataset"], {}).setdefault(r["cell"], []).append(r["metrics"]["top1"])
    mean = {d: {c: float(np.mean(v)) for c, v in s.items()} for d, s in scores.items() if all(c in s for c in names)}

    def best(ds: list[str]) -> str:
        return max(names, key=lambda c: (np.mean([mean[d][c] for d in ds]), -names.index(c)))

    out = {"methods": sorted({r["method"] for r in rows if r["dataset"] in mean}),
           "all": best(list(mean)) if mean else None, "per_dataset": {}}
    for d in mean:
        own, transferred = best([d]), best([o for o in mean if o != d]) if len(mean) > 1 else None
        out["per_dataset"][d] = {"own": own, "own_val_top1": mean[d][own], "transferred": transferred,
                                 "transferred_val_top1": mean[d][transferred] if transferred else None}
    return out


def stages(datasets: list[str], out: Path, results: Path, command: str) -> None:
    """Fine-tune from each pre-training stage on validation, with each dataset's packaged recipe."""
    path = results / "encoder_stages.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows = [r for r in old if r["dataset"] not in datasets]
    runs = [GridRun(out / "stages" / d / f"stage{e}", d,
                    [*COMMON, *VALIDATION, *schedule(d, 1.0, True),
                     f"finetune.pretrained=runs/encoders/{DATASETS[d]}/stage_{e}.ckpt"],
                    info={"dataset": d, "pretrain_epochs": e}) for d in datasets for e in STAGES[DATASETS[d]]]

    def row(run: GridRun, report: dict, seconds: float) -> dict:
        return {**run.info, "split": "validation", "seed": 0, "metrics": {"top1": report["val_top1"]},
                "wall_seconds": report.get("train_seconds", 0)}

    run_grid(runs, row, lambda rows: write_results(path, "Pre-training length, measured by fine-tuning on "
                                                         "validation", command, rows, ["dataset", "pretrain_epochs"],
                                                   ["top1"]), rows=rows)


def lr_scales(datasets: list[str], out: Path, results: Path, command: str, seeds: list[int]) -> None:
    """The packaged encoder at each learning-rate factor of its loaded layers, and scratch, on validation with
    each dataset's packaged recipe, per seed."""
    path = results / "encoder_lr_scale.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows = [r for r in old if r["dataset"] not in datasets]
    arms = [(f"encoder x{s:g}", [f"finetune.encoder_lr_scale={s}"]) for s in LR_SCALES]
    runs = [GridRun(out / "lr" / d / f"{name.replace(' ', '_')}_s{seed}", d,
                    [*COMMON, *VALIDATION, *schedule(d, 1.0, True), f"trainer.seed={seed}",
                     f"finetune.pretrained={encoder_path(DATASETS[d]) if name != 'scratch' else 'none'}", *arm],
                    info={"dataset": d, "arm": name, "seed": seed})
            for d in datasets for seed in seeds for name, arm in [*arms, ("scratch", [])]]

    def row(run: GridRun, report: dict, seconds: float) -> dict:
        return {**run.info, "split": "validation", "metrics": {"top1": report["val_top1"]},
                "wall_seconds": report.get("train_seconds", 0)}

    run_grid(runs, row, lambda rows: write_results(path, "Learning rate of the loaded encoder, measured by "
                                                         "fine-tuning on validation", command, rows,
                                                   ["dataset", "arm"], ["top1"]), rows=rows)


def baselines(dataset: str, fractions: list[float], seeds: list[int], split: list[str]) -> list[dict]:
    """The statistics baseline (plain and with mirror images) and the frozen encoder's linear probe: settings
    (normalisation, C) chosen on validation, then fit on the labelled training clips and tested once."""
    modality = DATASETS[dataset]
    encoder = load_encoder(encoder_path(modality))
    rows = []

    def features(cfg, samples, model, mirror: bool):
        data = SkeletonData(cfg, 32)
        views = [extract_features(samples, data, model, clip=0)]
        if mirror:
            views.append(extract_features(samples, data, model, clip=cfg.data.test_clips))
        return views

    for kind in ("statistics", "statistics + mirror images", "frozen encoder, linear probe"):
        mirror = kind == "statistics + mirror images"
        model = None
        if kind.startswith("frozen"):
            model = JointEncoder(encoder.config, encoder.in_channels)
            model.load_state_dict(encoder.state)
        best = None
        for norm in NORMALIZE[modality] if model is None else [load_config(dataset).data.normalize]:
            extra = [f"data.normalize={norm}", "data.test_clips=1", f"data.test_flip={str(mirror).lower()}"]
            val_cfg = load_config(dataset, [*split, "data.val_fraction=0.2", *extra])
            data = SkeletonData(val_cfg, 32)
            tr = features(val_cfg, data.train_samples(), model, mirror)
            va = features(val_cfg, data.val_samples(), model, mirror)
            x_tr, y_tr = np.concatenate([v[0] for v in tr]), np.concatenate([tr[0][1]] * len(tr))
            for c in C_GRID:
                top1 = linear_probe((x_tr, y_tr), ([v[0] for v in va], va[0][1]), c=c)["top1"]
                if best is None or top1 > best[0]:
                    best = (top1, norm, c)
        val_top1, norm, c = best
        cfg = load_config(dataset, [*split, f"data.normalize={norm}", "data.test_clips=1",
                                    f"data.test_flip={str(mirror).lower()}"])
        data = SkeletonData(cfg, 32)
        train = features(cfg, data.train_samples(), model, mirror)
        test = features(cfg, data.test_samples(), model, mirror)
        for fraction in fractions:
            for seed in seeds:
                keep = [s["i"] for s in stratified_subset([{"label": int(y), "i": i} for i, y in
                                                           enumerate(train[0][1])], fraction=fraction, seed=seed)]
                x = np.concatenate([v[0][keep] for v in train])
                y = np.concatenate([train[0][1][keep]] * len(train))
                metrics = linear_probe((x, y), ([v[0] for v in test], test[0][1]), c=c)
                rows.append({"dataset": dataset, "split": cfg.data.test_split, "protocol": "linear",
                             "method": kind, "label_fraction": fraction, "seed": seed,
                             "corpus": encoder.name if model is not None else "none",
                             "settings": {"normalize": norm, "C": c}, "chosen_on": "validation",
                             "val_top1": val_top1, "metrics": {k: metrics[k] for k in ("top1", "mean_class_acc")}})
    return rows


def final(datasets: list[str], out: Path, results: Path, command: str, seeds: list[int],
          fractions: list[float]) -> None:
    for dataset in datasets:
        path = results / f"encoder_{dataset}.json"
        encoder = ENCODER_FILES[DATASETS[dataset]]
        title = f"{dataset}: the packaged encoder vs from scratch (recipe chosen on validation), and the baselines"

        def write(rows: list[dict], path=path, title=title) -> None:
            write_results(path, title, command, rows, ["method", "corpus", "label_fraction"],
                          ["top1", "mean_class_acc"])

        splits = SPLITS.get(dataset, [[]])
        rows = [r for split in splits for r in baselines(dataset, fractions, seeds, split)]
        write(rows)
        runs = []
        for k, split in enumerate(splits, 1):
            for fraction in fractions:
                for seed in seeds:
                    for method, pretrained in (("SSL, packaged encoder", "auto"), ("SSL, from scratch", "none")):
                        overrides = [*COMMON, *split, *schedule(dataset, fraction, split=split),
                                     f"finetune.pretrained={pretrained}", f"trainer.seed={seed}",
                                     f"data.label_seed={seed}", f"data.label_fraction={fraction}"]
                        tag = "enc" if pretrained == "auto" else "scratch"
                        name = f"{tag}_f{fraction}_s{seed}" + (f"_split{k}" if len(splits) > 1 else "")
                        runs.append(GridRun(out / "final" / dataset / name, dataset, overrides,
                                            info={"method": method, "label_fraction": fraction, "seed": seed,
                                                  "corpus": encoder if pretrained == "auto" else "none"}))

        def row(run: GridRun, report: dict, seconds: float, dataset=dataset) -> dict:
            return {"dataset": dataset, "split": report["split"], "protocol": "finetune", **run.info,
                    "recipe_chosen_on": "validation", "metrics": {k: report[k] for k in ("top1", "mean_class_acc")},
                    "wall_seconds": report.get("train_seconds", 0)}

        run_grid(runs, row, write, rows=rows)


ENCODER, SCRATCH = "SSL, packaged encoder", "SSL, from scratch"
BASELINES = ("statistics", "statistics + mirror images")
TARGETS = {1.0: 0.02, 0.1: 0.05}  # mean gain over scratch the issue asks for, at full and 10 % labels


def summary(datasets: list[str], results: Path, command: str) -> dict:
    """Per dataset, label share and seed: the packaged encoder, scratch, their difference and the stronger
    statistics baseline (the one with the higher mean test top-1: the harder bar); then the targets checked on
    the per-dataset means: mean gain >= TARGETS, no dataset more than 1 point below scratch, the baseline beaten
    on every dataset."""
    rows = []
    for d in datasets:
        path = results / f"encoder_{d}.json"
        if not path.is_file():
            continue
        final = json.loads(path.read_text())["rows"]
        # a replicate is a (seed, test split) pair: JHMDB's three splits are three replicates of each seed
        top1 = {(r["method"], r["label_fraction"], (r["seed"], r["split"])): r["metrics"]["top1"] for r in final}
        for f in sorted({r["label_fraction"] for r in final}, reverse=True):
            reps = sorted(s for m, ff, s in top1 if m == ENCODER and ff == f and (SCRATCH, f, s) in top1)
            if not reps:
                continue
            base = max(BASELINES, key=lambda m, f=f, reps=reps: np.mean([top1[m, f, s] for s in reps]))
            rows += [{"dataset": d, "label_fraction": f, "encoder": ENCODER_FILES[DATASETS[d]], "seed": rep[0],
                      "split": rep[1], "baseline": base, "recipe_chosen_on": "validation",
                      "metrics": {"top1_encoder": top1[ENCODER, f, rep], "top1_scratch": top1[SCRATCH, f, rep],
                                  "top1_gain": top1[ENCODER, f, rep] - top1[SCRATCH, f, rep],
                                  "top1_baseline": top1[base, f, rep]}} for rep in reps]
    acceptance = {}
    for f, target in TARGETS.items():
        share = [r for r in rows if r["label_fraction"] == f]
        means = {d: {k: float(np.mean([r["metrics"][k] for r in share if r["dataset"] == d]))
                     for k in ("top1_encoder", "top1_scratch", "top1_gain", "top1_baseline")}
                 for d in dict.fromkeys(r["dataset"] for r in share)}
        if not means:
            continue
        gain = float(np.mean([m["top1_gain"] for m in means.values()]))
        worst = min(means, key=lambda d: means[d]["top1_gain"])
        beaten = {d: m["top1_encoder"] > m["top1_baseline"] for d, m in means.items()}
        acceptance[str(f)] = {"datasets": list(means), "mean_gain": gain, "target_mean_gain": target,
                              "worst_dataset": worst, "worst_gain": means[worst]["top1_gain"],
                              "baseline_beaten": beaten,
                              "met": bool(gain >= target and means[worst]["top1_gain"] >= -0.01 and all(beaten.values())
                                          and len(means) == len(DATASETS))}
    write_results(results / "encoder_summary.json", "The packaged encoder vs from scratch vs the stronger statistics "
                  "baseline (test top-1; recipe chosen on validation)", command, rows,
                  ["dataset", "label_fraction", "encoder", "baseline"],
                  ["top1_encoder", "top1_scratch", "top1_gain", "top1_baseline"], extra={"acceptance": acceptance})
    return acceptance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["select", "stages", "lr", "final", "summary"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--out", default="runs/encoder_benefit")
    parser.add_argument("--results", default="results")
    parser.add_argument("--methods", nargs="+", default=["pretrained", "scratch"], choices=["pretrained", "scratch"],
                        help="select: the methods to run (both count in the choice)")
    args = parser.parse_args(argv)
    command = "python experiments/encoder_benefit.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    out, results = Path(args.out), Path(args.results)
    if args.stage == "select":
        select(args.datasets, out, results, command, args.methods)
    elif args.stage == "stages":
        stages(args.datasets, out, results, command)
    elif args.stage == "lr":
        lr_scales(args.datasets, out, results, command, args.seeds)
    elif args.stage == "final":
        final(args.datasets, out, results, command, args.seeds, args.fractions)
    else:
        print(json.dumps(summary(args.datasets, results, command), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
