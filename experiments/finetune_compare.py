"""Does pre-training make the classifier better? Fine-tune SSL with and without SkeletonMAE pre-training.

Same budget, same seeds, same data for both rows; with all training labels and with a stratified share
of them. Every table also carries the trivial baseline (logistic regression on per-joint statistics of
the normalised coordinates and their velocity, fit on the same labelled clips).

    python experiments/finetune_compare.py --config penn_action --pretrain-epochs 15 --epochs 30 --seeds 0 1 2

pre-trains once (labels unused; reuses ``runs/compare/<dataset>_pretrain`` if it is there), then writes
``results/<dataset>_finetune.json`` (one row per run) and prints the table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from skeletonmae.config import load_config
from skeletonmae.data.datamodule import SkeletonDataModule, stratified_subset
from skeletonmae.results import render_markdown, write_results
from skeletonmae.tasks.finetune import run_finetune
from skeletonmae.tasks.pretrain import run_pretrain
from skeletonmae.tasks.probe import extract_features, linear_probe
from skeletonmae.tasks.trainer import load_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="penn_action")
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--checkpoint", help="use this pre-training checkpoint instead of pre-training here")
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
    if args.checkpoint:
        ckpt, pretrain_epochs = args.checkpoint, load_checkpoint(args.checkpoint)["epoch"] + 1
    else:
        pre_cfg = load_config(args.config, base + [
            f"pretrain.epochs={args.pretrain_epochs}", "pretrain.batch_size=32", "pretrain.lr=1e-3",
            f"trainer.out_dir={out / (dataset + '_pretrain')}"])
        ckpt, pretrain_epochs = run_pretrain(pre_cfg), args.pretrain_epochs

    # A short schedule keeps the paper's shape: warm-up, then lr / 10 at ~80 % and ~90 % of training.
    e = args.epochs
    recipe = [f"finetune.epochs={e}", f"finetune.warmup_epochs={max(1, e // 20)}",
              f"finetune.milestones=[{int(e * 0.8)}, {int(e * 0.9)}]", "finetune.batch_size=32"]
    if not args.only_pretrained:
        dm = SkeletonDataModule(cfg, 32)
        feats_train = extract_features(dm.train_samples(), dm, None)
        feats_test = extract_features(dm.test_samples(), dm, None)
    rows = []
    for fraction in args.fractions:
        for seed in args.seeds:
            common = {"dataset": dataset, "split": cfg.data.test_split, "protocol": "finetune",
                      "label_fraction": fraction, "seed": seed, "epochs": e}
            if not args.only_pretrained:  # trivial baseline on the labelled clips of this seed's runs
                labelled = stratified_subset([{"label": int(y), "i": i} for i, y in enumerate(feats_train[1])],
                                             fraction=fraction, seed=seed)
                keep = [s["i"] for s in labelled]
                start = time.time()
                metrics = linear_probe((feats_train[0][keep], feats_train[1][keep]), feats_test)
                rows.append({**common, "method": "coordinate statistics + logistic regression", "pretrained": False,
                             "metrics": metrics, "wall_seconds": round(time.time() - start, 1)})
            methods = [("SSL, SkeletonMAE pre-trained", str(ckpt)), ("SSL, from scratch", "none")]
            for name, pretrained in methods[:1] if args.only_pretrained else methods:
                tag = "pre" if pretrained != "none" else "scratch"
                run = load_config(args.config, base + recipe + [
                    f"finetune.pretrained={pretrained}", f"trainer.seed={seed}", f"data.label_seed={seed}",
                    f"data.label_fraction={fraction}",
                    f"trainer.out_dir={out / f'{dataset}_ft_{tag}_f{fraction}_s{seed}'}"])
                report = run_finetune(run)
                if pretrained != "none" and run.finetune.pretrained_layers != "all":
                    name += f" (G_E loaded into the {run.finetune.pretrained_layers} STRL layer only)"
                rows.append({**common, "method": name, "pretrained": pretrained != "none",
                             "pretrain_epochs": pretrain_epochs if pretrained != "none" else 0,
                             "metrics": {k: report[k] for k in ("top1", "top5", "mean_class_acc")},
                             "wall_seconds": report.get("train_seconds", 0)})
                path = write_results(Path(args.results) / f"{dataset}_finetune{args.name}.json",
                                     f"Fine-tuning on {dataset}: SkeletonMAE pre-training vs from scratch", command,
                                     rows, columns=["method", "label_fraction", "epochs"])
    print(render_markdown(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
