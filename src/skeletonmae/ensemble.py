"""Ensembles of runs: their class scores fused with weights chosen on validation (``skeletonmae ensemble``).

Skeleton classifiers are reported as ensembles of input streams (joint, bone and their motion; ``data.stream``):
one classifier per stream, their scores summed with weights. Here the scores are each run's softmax
probabilities (``scores.csv``, the mean over the K test clips), fused as a weighted mean

    p(c | x) = sum_r w_r p_r(c | x),  w_r >= 0,  sum_r w_r = 1.

The weights are chosen once, on the validation scores (``val_scores.csv``: the part ``data.val_fraction`` holds
out of the training split): every point of a grid over the simplex (multiples of ``step``) is scored by its
validation top-1, and of the best the one nearest equal weights wins (so ties give equal weights). The chosen
weights are then applied to the test scores once. For reference the report also gives the fusion with equal
weights (no choice made), on both splits.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .errors import DataError
from .metrics import classification_metrics
from .scores import TEST_SCORES, VAL_SCORES, Scores, read_scores

# The data settings that make two runs' splits the same (file, train/test split, validation carve).
SPLIT_KEYS = ("path", "train_split", "test_split", "val_fraction", "val_group", "val_seed")
MAX_GRID_POINTS = 200_000
FUSION = "weighted mean of the runs' softmax probabilities (each the mean over a sample's K test clips)"


@dataclass
class Run:
    """A fine-tuning run's directory, its data settings and its test and validation class scores."""

    path: Path
    data: dict
    test: Scores
    val: Scores


def load_run(path: str | Path) -> Run:
    """The run in ``path`` (its config.yaml, scores.csv and val_scores.csv)."""
    path = Path(path)
    config = path / "config.yaml"
    if not config.is_file():
        raise DataError(f"{path} is not a run directory (no config.yaml): give the --out of `skeletonmae finetune`")
    if not (path / TEST_SCORES).is_file():
        raise DataError(f"run {path} has no {TEST_SCORES} (the class scores of its test split): it was tested "
                        "before runs wrote them, or not at all; write them with `skeletonmae test --checkpoint "
                        f"{path}/checkpoints/last.ckpt --out {path}`")
    if not (path / VAL_SCORES).is_file():
        raise DataError(f"run {path} has no validation scores ({VAL_SCORES}): the fusion weights are chosen on "
                        "validation. Fine-tune every run with data.val_fraction > 0 (e.g. data.val_fraction=0.2, "
                        "the same value and data.val_seed for every run); a run that held one out but predates "
                        f"the scores files gets them with `skeletonmae test --checkpoint {path}/checkpoints/last.ckpt "
                        f"--validation --out {path}`")
    data = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data", {})
    return Run(path, data, read_scores(path / TEST_SCORES), read_scores(path / VAL_SCORES))


def check_compatible(runs: list[Run]) -> None:
    """Refuse runs that cannot be fused: on other data or splits, with other classes or other samples."""
    if len(runs) < 2:
        raise DataError("an ensemble needs at least two runs")
    first = runs[0]
    for run in runs[1:]:
        differ = [f"data.{k}: {first.data.get(k)!r} vs {run.data.get(k)!r}" for k in SPLIT_KEYS
                  if first.data.get(k) != run.data.get(k)]
        if differ:
            raise DataError(f"runs {first.path} and {run.path} were trained on different data or splits ("
                            + "; ".join(differ) + "): fuse only runs of the same dataset, splits and validation carve")
        for split, a, b in (("test", first.test, run.test), ("validation", first.val, run.val)):
            if a.probs.shape[1] != b.probs.shape[1]:
                raise DataError(f"runs {first.path} and {run.path} score {a.probs.shape[1]} and {b.probs.shape[1]} "
                                "classes: fuse only runs of the same classes")
            if a.ids != b.ids or not np.array_equal(a.labels, b.labels):
                raise DataError(f"the {split} samples of runs {first.path} and {run.path} differ (ids or labels, "
                                f"{len(a.ids)} vs {len(b.ids)} samples): fuse only runs scored on the same samples")


def simplex_grid(num_runs: int, step: float) -> np.ndarray:
    """Every weight vector [G, num_runs] of non-negative multiples of ``step`` summing to 1 (stars and bars)."""
    parts = round(1 / step)
    if parts < 1 or not math.isclose(parts * step, 1):
        raise DataError(f"the weight step must divide 1 (e.g. 0.1, 0.05, 0.25), got {step}")
    points = math.comb(parts + num_runs - 1, num_runs - 1)
    if points > MAX_GRID_POINTS:
        raise DataError(f"a weight grid of step {step} over {num_runs} runs has {points} points; take a larger step")
    bars = np.array(list(itertools.combinations(range(parts + num_runs - 1), num_runs - 1)), dtype=np.int64)
    bars = bars.reshape(points, num_runs - 1)
    edges = np.concatenate([np.full((points, 1), -1), bars, np.full((points, 1), parts + num_runs - 1)], axis=1)
    return (np.diff(edges, axis=1) - 1) / parts


def fuse(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The fused scores: ``probs`` [R, N, C] weighted by ``weights`` [R] (the equation of the module)."""
    return np.tensordot(weights, probs, axes=1)


def grid_top1(probs: np.ndarray, labels: np.ndarray, grid: np.ndarray, chunk_elements: int = 2**25) -> np.ndarray:
    """Top-1 accuracy [G] of the fusion of ``probs`` [R, N, C] with each weight vector of ``grid`` [G, R]."""
    n, c = probs.shape[1:]
    size = max(1, chunk_elements // max(1, n * c))
    out = [(np.einsum("gr,rnc->gnc", grid[i:i + size], probs).argmax(-1) == labels).mean(-1)
           for i in range(0, len(grid), size)]
    return np.concatenate(out) if out else np.zeros(0)


def choose_weights(probs: np.ndarray, labels: np.ndarray, step: float = 0.1) -> tuple[np.ndarray, float]:
    """(weights [R], their top-1): the grid point of best top-1 on ``probs`` [R, N, C]; of several, the nearest
    equal weights (then the first)."""
    grid = simplex_grid(len(probs), step)
    top1 = grid_top1(probs, labels, grid)
    best = np.flatnonzero(top1 >= top1.max() - 1e-12)
    distance = ((grid[best] - 1 / len(probs)) ** 2).sum(1)
    choice = best[np.argmin(distance)]
    return grid[choice], float(top1[choice])


def validation_words(data: dict, clips: int) -> str:
    """Which split chose the weights, in words."""
    group = f", by subject (data.val_group={data.get('val_group')!r})" if data.get("val_group") else ""
    return (f"validation: {clips} clips held out of {data.get('train_split')} (data.val_fraction="
            f"{data.get('val_fraction')}, data.val_seed={data.get('val_seed')}{group})")


def member(run: Run, weight: float) -> dict:
    """A run's line of the report: its stream, weight, and its own test and validation accuracy."""
    test = classification_metrics(run.test.probs, run.test.labels)
    return {"run": str(run.path), "stream": run.data.get("stream", "joint"), "weight": float(weight),
            "top1": test["top1"], "mean_class_acc": test["mean_class_acc"],
            "val_top1": classification_metrics(run.val.probs, run.val.labels)["top1"]}


def ensemble(paths: list[str | Path], step: float = 0.1) -> tuple[dict, Scores]:
    """Fuse the runs in ``paths``: (the report of metrics.json, the fused test scores)."""
    runs = [load_run(p) for p in paths]
    check_compatible(runs)
    val = np.stack([r.val.probs for r in runs])
    test = np.stack([r.test.probs for r in runs])
    labels, val_labels = runs[0].test.labels, runs[0].val.labels
    weights, val_top1 = choose_weights(val, val_labels, step)
    fused = Scores(runs[0].test.ids, labels, fuse(test, weights))
    metrics = classification_metrics(fused.probs, labels)
    members = [member(r, w) for r, w in zip(runs, weights, strict=True)]
    equal = np.full(len(runs), 1 / len(runs))
    reference = {"val_top1": classification_metrics(fuse(val, equal), val_labels)["top1"],
                 **{k: v for k, v in classification_metrics(fuse(test, equal), labels).items() if k != "confusion"}}
    report = {"split": runs[0].data.get("test_split"), "num_samples": len(labels), "fusion": FUSION,
              "weights": [float(w) for w in weights], "weight_step": step,
              "weights_chosen_on": validation_words(runs[0].data, len(val_labels)), "val_top1": val_top1,
              **metrics, "runs": members, "equal_weights": reference}
    return report, fused
