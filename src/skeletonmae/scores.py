"""Class-score files: every sample's softmax probabilities (K-clip averaged), the input of ``skeletonmae ensemble``.

``predictions.csv`` has per sample its predicted class and the top 5. ``scores.csv`` has one row per sample, in
the split's order: ``frame_dir``, ``label``, then one column per class (``p0``, ``p1``, ...), the probabilities
the classifier gave (``SSLClassifier.predict_clips``). A fine-tuning run writes both for its test split and,
when it holds out a validation part (``data.val_fraction`` > 0), ``val_scores.csv`` for that part.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .fileio import atomic_open

TEST_SCORES, VAL_SCORES = "scores.csv", "val_scores.csv"


@dataclass
class Scores:
    """The class scores of one split: ``ids`` (frame_dir) [N], ``labels`` [N], ``probs`` [N, classes]."""

    ids: list[str]
    labels: np.ndarray
    probs: np.ndarray


def write_scores(path: Path, scores: Scores) -> Path:
    """Write ``scores`` to ``path`` (CSV, atomically)."""
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["frame_dir", "label", *(f"p{c}" for c in range(scores.probs.shape[1]))])
        for sample, label, row in zip(scores.ids, scores.labels, scores.probs, strict=True):
            w.writerow([sample, int(label), *(f"{p:.6g}" for p in row)])
    return path


def write_predictions(path: Path, scores: Scores) -> Path:
    """predictions.csv (atomically): per sample its frame_dir, label, predicted class, its score, the top 5."""
    top5 = np.argsort(-scores.probs, axis=1)[:, :5]
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["frame_dir", "label", "pred", "score", "top5"])
        for sample, label, probs, best in zip(scores.ids, scores.labels, scores.probs, top5, strict=True):
            w.writerow([sample, label, best[0], f"{probs[best[0]]:.4f}", " ".join(map(str, best))])
    return path


def read_scores(path: Path) -> Scores:
    """The :class:`Scores` of a file :func:`write_scores` wrote."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise DataError(f"cannot read the class scores {path}: {e.strerror or e}") from e
    if not rows or rows[0][:2] != ["frame_dir", "label"] or len(rows[0]) < 3:
        raise DataError(f"{path} is not a class-score file (header frame_dir,label,p0,p1,...)")
    try:
        body = np.array([row[1:] for row in rows[1:]], dtype=np.float64).reshape(len(rows) - 1, len(rows[0]) - 1)
    except ValueError as e:
        raise DataError(f"{path}: a row is not a label followed by {len(rows[0]) - 2} numbers ({e})") from e
    return Scores([row[0] for row in rows[1:]], body[:, 0].astype(np.int64), body[:, 1:])
