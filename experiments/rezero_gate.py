"""How much of each ReZero STRL layer's output comes from the STRL branch (``classifier.rezero=true``)?

For each fine-tuned run directory, prints every layer's learnt α and the ratio |α · STRL(H)| / |H| of the
branch to the skip path over the first test clip of every sample of the run's test split (norms summed
over the whole split). A ratio well below 1 means the classifier mostly pools the embedding.

    python experiments/rezero_gate.py runs/compare_rz/jhmdb14_ft_scratch_f1.0_s0 ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from skeletonmae.data.dataset import SkeletonData
from skeletonmae.models.build import load_classifier


@torch.no_grad()
def branch_ratios(run: Path) -> list[tuple[float, float]]:
    """(α, |α · STRL(H)| / |H|) of every STRL layer of the classifier in ``run``."""
    model, cfg = load_classifier(run / "checkpoints" / "last.ckpt")
    if not cfg.classifier.rezero:
        raise SystemExit(f"{run} was not trained with classifier.rezero=true")
    sums = [[0.0, 0.0] for _ in model.layers]

    def hook(i: int):
        def record(layer, inputs, outputs):
            h, y = inputs[0][:, :, :: layer.stride], outputs[0]
            sums[i][0] += float((y - h).square().sum())
            sums[i][1] += float(h.square().sum())
        return record

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(model.layers)]
    for x, _, _ in SkeletonData(cfg, 64).test_dataloader(cfg.data.test_split):
        model(x[:, 0])
    for handle in handles:
        handle.remove()
    return [(float(layer.gate), (branch / skip) ** 0.5) for layer, (branch, skip) in zip(model.layers, sums,
                                                                                        strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="fine-tuning run directories")
    args = parser.parse_args(argv)
    for run in args.runs:
        cells = [f"layer {i}: alpha {a:+.3f}, branch / skip {r:.2f}" for i, (a, r) in enumerate(branch_ratios(run))]
        print(f"{run}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
