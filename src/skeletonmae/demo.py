"""``skeletonmae demo``: the whole pipeline on the embedded synthetic data, at a CPU budget.

Generates the demo annotation pickle, pre-trains SkeletonMAE on its training clips (labels unused),
fine-tunes the SSL classifier from the pre-trained encoder and, with the same seed and budget, from
scratch, tests both and writes ``summary.json`` beside the runs. Runs that are already there are resumed
(a finished one is only tested again), so the command can be repeated.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import load_config
from .data.synthetic import write_demo_pickle
from .fileio import atomic_open
from .tasks.finetune import run_finetune
from .tasks.pretrain import run_pretrain

QUICK = ["pretrain.epochs=1", "finetune.epochs=1", "finetune.warmup_epochs=0", "finetune.milestones=[]",
         "trainer.limit_train_batches=3", "data.test_clips=1"]


def run_demo(out: Path, quick: bool = False, resume: bool = False) -> dict:
    data = write_demo_pickle(out / "demo.pkl", num_per_class=12 if quick else 40, seed=0)
    base = [f"data.path={data}", f"trainer.resume={str(resume).lower()}"] + (QUICK if quick else [])
    cfg = load_config("demo", base + [f"trainer.out_dir={out / 'pretrain'}"])
    ckpt = run_pretrain(cfg, ["demo"])
    results = {}
    for name, pretrained in (("pretrained", str(ckpt)), ("scratch", "none")):
        cfg = load_config("demo", base + [f"trainer.out_dir={out / ('finetune_' + name)}",
                                                      f"finetune.pretrained={pretrained}"])
        report = run_finetune(cfg, ["demo"])
        results[name] = {k: report[k] for k in ("top1", "top5", "mean_class_acc", "train_seconds")}
    with atomic_open(out / "summary.json", "w") as f:
        json.dump(results, f, indent=1)
    print("\ndemo results (test split of the synthetic set):")
    print(f"{'':12s} {'top1':>7s} {'mean cls':>9s} {'train s':>8s}")
    for name, r in results.items():
        print(f"{name:12s} {r['top1']:7.3f} {r['mean_class_acc']:9.3f} {r['train_seconds']:8.0f}")
    print(f"written: {out / 'summary.json'}")
    return results
