"""Linear probe of frozen features: does pre-training learn something? (a protocol beyond the paper)

Each clip (one deterministic test-mode clip, also for the training split) is turned into a fixed vector
by the same pooling for every feature source: per joint, the mean and the standard deviation over the
frames where the person is present, averaged over present persons. Sources:

- ``encoder``: the SkeletonMAE encoder output H = G_E(A, X) (pre-trained or randomly initialised);
- ``coords``: the normalised joint coordinates and their frame-to-frame velocity, the trivial baseline
  a learned model must beat.

A logistic regression (scikit-learn, standardised features) is fit on the training split, with all
labels or with ``n`` labelled clips per class, and scored on the test split.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.dataset import SkeletonData, SkeletonDataset, collect, stratified_subset
from ..metrics import classification_metrics
from ..models.encoder import JointEncoder
from ..models.skeletonmae import present_joints
from ..nn.pooling import pool_per_joint


def coordinate_features(x: torch.Tensor) -> torch.Tensor:
    """Coordinates and velocity, [N, P, T, V, C] -> [N, P, T, V, 2C] (velocity 0 at the last frame)."""
    vel = torch.zeros_like(x)
    vel[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([x, vel], dim=-1)


@torch.no_grad()
def extract_features(samples: list[dict], data: SkeletonData, encoder: JointEncoder | None,
                     batch_size: int = 64, clip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features and labels of ``samples``: of the joint ``encoder``'s output H = G_E(A, X), or for
    ``encoder=None`` of the coordinates and their velocity (the baseline).

    ``clip`` picks one of the test pipeline's clips (with ``data.test_flip``, clip ``data.test_clips`` is the
    mirror image of clip 0)."""
    loader = torch.utils.data.DataLoader(SkeletonDataset(samples, data.pipeline(train=False)), batch_size=batch_size)
    if encoder is not None:
        encoder.eval()
    channels = data.load().num_channels

    def features(x: torch.Tensor) -> torch.Tensor:
        x = x[:, clip]  # one deterministic clip: [N, P, T, V, C]
        # the baseline takes the coordinates alone (no data.motion, data.bone or score channels), adds velocity
        h = coordinate_features(x[..., :channels]) if encoder is None else encoder(x)
        return pool_per_joint(h, present_joints(x).any(-1))

    feats, labels, _ = collect(loader, features)
    return feats, labels


def linear_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray | list[np.ndarray], np.ndarray],
                 per_class: int = 0, seed: int = 0, c: float = 1.0) -> dict:
    """Fit a logistic regression on (a stratified subset of) ``train``; metrics on ``test``.

    ``test`` may hold a list of feature arrays (views of the same clips): their probabilities are averaged."""
    x, y = train
    if per_class > 0:
        subset = stratified_subset([{"label": int(label), "i": i} for i, label in enumerate(y)],
                                   per_class=per_class, seed=seed)
        keep = [s["i"] for s in subset]
        x, y = x[keep], y[keep]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    clf.fit(x, y)
    scores = np.zeros((len(test[1]), int(max(train[1].max(), test[1].max())) + 1))
    views = test[0] if isinstance(test[0], list) else [test[0]]
    scores[:, clf.classes_] = np.mean([clf.predict_proba(v) for v in views], axis=0)
    metrics = classification_metrics(scores, test[1])
    metrics.pop("confusion")
    return {**metrics, "train_clips": len(y)}
