"""The paper's figures from the runs of the experiments (docs/figures/*.png, shown in docs/results.md).

    python experiments/figures.py

needs the runs of `experiments/pretrain_probe.py --config penn_action` (runs/probe/penn_action_*) and of
`experiments/finetune_compare.py --config penn_action` (runs/compare/penn_action_*).
"""

import sys
from pathlib import Path

from skeletonmae.cli import main

OUT = Path("docs/figures")
PRE = Path("runs/probe/penn_action_window/checkpoints/last.ckpt")
COORDS = Path("runs/probe/penn_action_coords/checkpoints/last.ckpt")
FT = Path("runs/compare/penn_action_ft_pre_f1.0_s0")

COMMANDS = [
    ["visualize", "reconstruction", "--checkpoint", str(PRE), "--index", "5", "--out",
     str(OUT / "reconstruction_window.png")],
    ["visualize", "reconstruction", "--checkpoint", str(COORDS), "--index", "5", "--out",
     str(OUT / "reconstruction_coords.png")],
    ["visualize", "pca", "--checkpoint", str(PRE), "--classes", "0", "1", "5", "13", "14", "--out",
     str(OUT / "pca_pretrained_encoder.png")],
    ["visualize", "pca", "--checkpoint", str(FT / "checkpoints" / "last.ckpt"), "--classes", "0", "1", "5", "13",
     "14", "--out", str(OUT / "pca_finetuned.png")],
    ["visualize", "confusion", "--metrics", str(FT / "metrics.json"), "--out", str(OUT / "confusion_finetuned.png")],
    ["visualize", "curves", "--run", str(FT), "--out", str(OUT / "curves_finetuned.png")],
]

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    sys.exit(max(main(cmd) for cmd in COMMANDS))
