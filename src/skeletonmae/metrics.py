"""Evaluation metrics as PYSKL defines them (paper §4.2): top-k accuracy and mean class accuracy.

Mean class accuracy is the per-class recall averaged over the classes present in the ground truth
(PYSKL's ``mean_class_accuracy``; scikit-learn's ``balanced_accuracy_score``). Multi-clip testing
averages the softmax scores of the K clips of a sample before scoring.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose label is among the k highest scores [N, classes]."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def classification_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> dict:
    """top1, top5, mean_class_acc (as fractions) and the confusion matrix (rows: true, columns: predicted)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    num_classes = num_classes or scores.shape[1]
    pred = scores.argmax(axis=1)
    return {
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
        "mean_class_acc": float(balanced_accuracy_score(labels, pred)),
        "confusion": confusion_matrix(labels, pred, labels=np.arange(num_classes)).tolist(),
    }
