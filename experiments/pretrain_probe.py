"""Does SkeletonMAE pre-training learn something? Pre-train with each reconstruction target, then probe.

For each target (window, coords, embedding) this pre-trains SkeletonMAE on the training split (labels
unused) and reports, on the test split:
- the masked-joint reconstruction error (RCE) against the trivial baseline that predicts, for every
  masked joint, that joint's mean target over the training split;
- a linear probe of the frozen encoder (all labels, and 10 labelled clips per class over 3 seeds),
beside the same encoder randomly initialised and the raw-coordinate statistics baseline.

    python experiments/pretrain_probe.py --config penn_action --epochs 15
    python experiments/pretrain_probe.py --config nw_ucla --epochs 15

writes ``results/<dataset>_probe.json`` (one row per measurement) and prints the table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from skeletonmae.config import load_config
from skeletonmae.data.dataset import SkeletonData, SkeletonDataset
from skeletonmae.models.build import load_pretrained
from skeletonmae.models.rce import rce_loss
from skeletonmae.models.skeletonmae import SkeletonMAE
from skeletonmae.results import render_markdown, write_results
from skeletonmae.tasks.pretrain import run_pretrain
from skeletonmae.tasks.probe import extract_features, linear_probe

TARGETS = ("window", "coords", "embedding")


@torch.no_grad()
def reconstruction_error(model, train: list[dict], test: list[dict], dm: SkeletonData, seed: int = 0) -> dict:
    """Test-split RCE of the model and of the per-joint mean-target baseline, on the same masks."""
    model.eval()

    def batches(samples):
        loader = torch.utils.data.DataLoader(SkeletonDataset(samples, dm.pipeline(train=False)), batch_size=64)
        for x, _, _ in loader:
            yield x[:, 0]

    total = count = None
    for x in batches(train):  # mean target per joint over the training split
        clips = x.reshape(-1, *x.shape[-3:])
        t = model.targets(clips)
        valid = clips.ne(0).any(-1, keepdim=True).float()
        s, n = (t * valid).sum((0, 1)), valid.sum((0, 1))
        total, count = (s, n) if total is None else (total + s, count + n)
    mean_target = total / count.clamp_min(1)  # [V, D_target]
    gen = torch.Generator().manual_seed(seed)
    model_err, base_err, joints = 0.0, 0.0, 0
    for x in batches(test):
        n, p, t = x.shape[:3]
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        mask = model.masker(n * p, t)
        out = model(x, mask=mask)
        k = int(out["mask"].sum())
        model_err += float(out["loss"]) * k
        base = mean_target.expand_as(out["target"])
        base_err += float(rce_loss(base, out["target"], out["mask"], model.config.beta, model.config.rce_form)) * k
        joints += k
    return {"rce_model": model_err / joints, "rce_mean_target_baseline": base_err / joints}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="penn_action")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--out", default="runs/probe")
    parser.add_argument("--results", default="results")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    command = "python experiments/pretrain_probe.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    base = [f"pretrain.epochs={args.epochs}", "pretrain.batch_size=32", "pretrain.lr=1e-3", "trainer.resume=true",
            "trainer.progress=false", *args.overrides]
    cfg = load_config(args.config, base)
    dataset = Path(cfg.data.path).stem
    dm = SkeletonData(cfg, 128)
    train, test = dm.train_samples(), dm.test_samples()
    rows, recon_rows = [], []

    def probe(method: str, model, extra: dict, seconds: float = 0.0):
        start = time.time()
        feats_train, feats_test = extract_features(train, dm, model.encoder), extract_features(test, dm, model.encoder)
        common = {"dataset": dataset, "split": cfg.data.test_split, "method": method, "epochs": extra.get("epochs", 0),
                  **extra}
        rows.append({**common, "protocol": "linear probe, all labels", "label_fraction": 1.0, "seed": 0,
                     "metrics": linear_probe(feats_train, feats_test),
                     "wall_seconds": round(seconds + time.time() - start, 1)})
        for seed in range(3):
            rows.append({**common, "protocol": "linear probe, 10 clips/class", "label_fraction": "10/class",
                         "seed": seed, "metrics": linear_probe(feats_train, feats_test, per_class=10, seed=seed)})
        print(f"probed {method}: top1 {rows[-4]['metrics']['top1']:.3f}", flush=True)

    probe("coordinate statistics (baseline)", None, {"pretrained": False})
    torch.manual_seed(cfg.trainer.seed)
    probe("encoder, random init", SkeletonMAE(cfg.encoder, cfg.mae, dm.in_channels), {"pretrained": False})
    for target in args.targets:
        run_cfg = load_config(args.config, base + [f"mae.target={target}",
                                                   f"trainer.out_dir={args.out}/{dataset}_{target}"])
        start = time.time()
        ckpt = run_pretrain(run_cfg)
        seconds = time.time() - start
        model, _ = load_pretrained(ckpt)
        recon = reconstruction_error(model, train, test, dm)
        recon_rows.append({"dataset": dataset, "split": cfg.data.test_split, "protocol": "masked-joint reconstruction",
                           "target": target, "epochs": args.epochs, "seed": 0, "metrics": recon,
                           "wall_seconds": round(seconds, 1)})
        print(f"target {target}: {recon}", flush=True)
        probe(f"SkeletonMAE, target={target}", model, {"pretrained": True, "target": target, "epochs": args.epochs},
              seconds)

    path = write_results(Path(args.results) / f"{dataset}_probe.json",
                         f"Linear probe of frozen features on {dataset}", command, rows,
                         columns=["method", "protocol"])
    print(render_markdown(path))
    path = write_results(Path(args.results) / f"{dataset}_reconstruction.json",
                         f"Masked-joint reconstruction error (RCE, test split) on {dataset}", command, recon_rows,
                         columns=["target", "epochs"], metrics=["rce_model", "rce_mean_target_baseline"])
    print(render_markdown(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
