"""Per-joint statistics pooling: a clip's features [N, P, T, V, D] to one vector per clip.

Per joint, the mean and the standard deviation over the frames where the person is present, averaged over
the present persons. The linear probe pools every feature source this way, and the SSL classifier can use
it in place of the mean over T, V and persons (``classifier.pool='joint_stats'``), so that the head sees which
joint moved how, as the coordinate-statistics baseline does.
"""

from __future__ import annotations

import torch


def pool_per_joint(h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """h: [N, P, T, V, D], present: [N, P, T] bool -> [N, 2 · V · D] (per joint: D means, then D stds)."""
    w = present[..., None, None].to(h.dtype)
    count = w.sum(2).clamp_min(1)  # [N, P, 1, 1]
    mean = (h * w).sum(2) / count
    var = ((h - mean.unsqueeze(2)) ** 2 * w).sum(2) / count
    std = var.clamp_min(1e-12).sqrt()  # the clamp keeps the gradient finite where a joint never moves
    person = present.any(2)[..., None, None].to(h.dtype)  # [N, P, 1, 1]
    pooled = torch.cat([mean, std], dim=-1) * person
    return (pooled.sum(1) / person.sum(1).clamp_min(1)).flatten(1)
