"""Re-weighted Cosine Error, the SkeletonMAE reconstruction criterion (paper §3.1.3, Eq. 2).

Eq. 2 as printed, for the masked joints V̄ of one graph::

    L = sum_{i in V̄} ( 1/|V̄| - x_i·z_i / (|V̄| ||x_i|| ||z_i||) )^beta  =  |V̄|^-beta  sum_i (1 - cos_i)^beta

GraphMAE's SCE, which the paper follows, is the mean ``1/|V̄| sum_i (1 - cos_i)^beta``. The two differ by
the factor ``|V̄|^(1-beta)`` (design note 7): for beta = 2 Eq. 2 weights a graph with many masked joints
less. ``form='graphmae'`` (default) takes the mean over all masked joints of the batch; ``form='eq2'``
applies Eq. 2 per graph and averages over the graphs of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rce_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, beta: float = 2.0, form: str = "graphmae"
) -> torch.Tensor:
    """RCE between ``pred`` and ``target`` [B, V, D] over the joints where ``mask`` [B, V] is True.

    B indexes graphs (one per frame and person). Returns a scalar; 0 if nothing is masked.
    """
    cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-8)  # [B, V]
    err = (1.0 - cos).clamp_min(0.0).pow(beta) * mask
    if form == "graphmae":
        return err.sum() / mask.sum().clamp_min(1)
    if form == "eq2":
        count = mask.sum(dim=1)
        per_graph = err.sum(dim=1) / count.clamp_min(1).to(err.dtype).pow(beta)
        has = count > 0
        return per_graph[has].sum() / has.sum().clamp_min(1)
    raise ValueError(f"form must be 'graphmae' or 'eq2', got {form!r}")
