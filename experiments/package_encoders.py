"""Put a pre-trained encoder into the package, with its model card.

    python experiments/package_encoders.py --modality 2d --stage 20
    python experiments/package_encoders.py --modality 3d --stage 60

Reads ``runs/encoders/<modality>/stage_<E>.ckpt`` (experiments/pretrain_encoders.py) and writes
``src/skeletonmae/encoders/<layout>_<modality>.pt`` (the joint encoder: embedding, joint embedding, G_E; its
config and input settings; the card), the loss curve ``docs/figures/encoder_<modality>_loss.png``, and the
model-card table ``src/skeletonmae/encoders/README.md`` (one row per packaged encoder, with its sha256).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from pathlib import Path

from pretrain_encoders import EVALUATED, SOURCES_2D, SOURCES_3D

from skeletonmae.data.safe_pickle import load_pickle
from skeletonmae.fileio import atomic_open
from skeletonmae.models.build import ENCODERS, load_encoder, load_pretrained, packaged_encoders, save_encoder
from skeletonmae.viz import plot_curves

HEADER = """# Packaged encoders

Pre-trained SkeletonMAE joint encoders (embedding, joint embedding and G_E) that `skeletonmae finetune` loads by
default (`finetune.pretrained=auto`) when the model's encoder config, input channels and data settings match.
Each was pre-trained by the paper's method (§3.1) with the command in its row, on the corpus named there; the
full card (corpus clip counts, config, losses per epoch) is stored in the file itself
(`skeletonmae.models.build.load_encoder(path).card`).

Corpus licences: Bandai-Namco Research Motion is CC BY-NC 4.0 (non-commercial); an encoder trained on it is
meant for research. Cite the datasets in the corpus (see each dataset's README) when you use an encoder.

| file | layout | input | corpus (clips) | pre-training | epochs | wall time | final loss | size | sha256 |
|---|---|---|---|---|---|---|---|---|---|
"""


def losses(run: Path) -> list[float]:
    rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    return [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]


def wall_minutes(log: Path, stage: int) -> float:
    found = re.findall(rf"stage {stage} epochs: .* \((\d+) min so far\)", log.read_text())
    return float(found[-1]) if found else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=["2d", "3d"], required=True)
    parser.add_argument("--stage", type=int, required=True, help="the pre-training epochs to ship")
    parser.add_argument("--runs", default="runs/encoders")
    args = parser.parse_args(argv)

    runs = Path(args.runs) / args.modality
    ckpt = runs / f"stage_{args.stage}.ckpt"
    _, cfg = load_pretrained(ckpt)
    pool = load_pickle(cfg.data.path)["split"]["pool"]
    sources = SOURCES_2D + SOURCES_3D if args.modality == "2d" else SOURCES_3D
    corpus = {name: sum(1 for c in pool if c.startswith(name + "/")) for name, _ in sources}
    curve = losses(runs / "run")[: args.stage]
    card = {
        "method": "SkeletonMAE (paper §3.1): body-region masking, GIN encoder, one-layer decoder, RCE (beta 2)",
        "corpus": corpus, "corpus_clips": len(pool),
        "excluded_splits": [e for e in EVALUATED if e.split("/")[0] in corpus],
        "views_per_3d_clip": 4 if args.modality == "2d" else 0,
        "command": f"OMP_NUM_THREADS=1 python experiments/pretrain_encoders.py --modality {args.modality}",
        "commit": (runs / "commit.txt").read_text().strip(), "epochs": args.stage,
        "wall_minutes": wall_minutes(Path(args.runs) / f"{args.modality}.log", args.stage),
        "loss_per_epoch": [round(v, 5) for v in curve], "config": cfg.to_dict(),
    }
    out = save_encoder(ckpt, ENCODERS / f"{cfg.encoder.layout}_{args.modality}.pt", card)
    plot_curves(runs / "run", Path("docs/figures") / f"encoder_{args.modality}_loss.png")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB)")

    rows = []
    for path in packaged_encoders().values():
        enc = load_encoder(path)
        c = enc.card
        corpus_text = ", ".join(f"{k} {v}" for k, v in c["corpus"].items())
        rows.append(f"| `{path.name}` | {enc.config.layout} | C = {enc.in_channels} ({enc.data}) | {corpus_text} "
                    f"({c['corpus_clips']}) | `{c['command']}` at `{c['commit']}` | {c['epochs']} | "
                    f"{c['wall_minutes']:.0f} min | {c['loss_per_epoch'][-1]:.4f} | "
                    f"{path.stat().st_size / 1024:.0f} kB | `{hashlib.sha256(path.read_bytes()).hexdigest()}` |")
    with atomic_open(ENCODERS / "README.md", "w") as f:
        f.write(HEADER + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
