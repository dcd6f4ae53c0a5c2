"""The Norm-Act tail shared by every graph layer, and the norm / activation factories.

GraphMAE (Hou et al., KDD 2022), whose recipe SkeletonMAE follows (paper §3.1), ends every hidden graph layer
with a normalisation and an activation, and leaves the decoder's last layer a plain linear output.

Tensors are [B, V, D] (B graphs of V joints); 'batchnorm' normalises each of the D features over all B·V
nodes (BatchNorm1d on the flattened [B·V, D] node matrix, as PyG's BatchNorm does on a node batch).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

NORMS = ("batchnorm", "layernorm", "none")
ACTS = ("prelu", "relu", "elu", "gelu", "none")


class NodeBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the feature dim of a [..., D] tensor (statistics over all nodes of all graphs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def make_norm(name: str, dim: int) -> nn.Module:
    """'batchnorm' (:class:`NodeBatchNorm`), 'layernorm' (over D) or 'none' for [..., dim] tensors."""
    if name == "batchnorm":
        return NodeBatchNorm(dim)
    if name == "layernorm":
        return nn.LayerNorm(dim)
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm '{name}'; choose one of {', '.join(NORMS)}")


def make_act(name: str, dim: int) -> nn.Module:
    """'prelu' (one shared slope, as GraphMAE), 'relu', 'elu', 'gelu' or 'none'.

    ``dim`` is accepted so that a per-channel activation can be added without changing callers.
    """
    acts = {"prelu": nn.PReLU, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "none": nn.Identity}
    if name not in acts:
        raise ConfigError(f"unknown activation '{name}'; choose one of {', '.join(ACTS)}")
    return acts[name]()


class NormAct(nn.Sequential):
    """Norm then activation over [..., dim]; empty (an identity) for a decoder's last layer (``last=True``)."""

    def __init__(self, dim: int, norm: str = "batchnorm", act: str = "prelu", last: bool = False):
        super().__init__(*([] if last else [make_norm(norm, dim), make_act(act, dim)]))


def dense_adjacency(adjacency, self_loops: bool = False) -> torch.Tensor:
    """A float32 [V, V] copy of a 0/1 adjacency (tensor or array); with ``self_loops`` the diagonal set to 1.

    Setting (not adding) the diagonal gives A + I for a loop-free A and never counts a loop twice, like PyG's
    ``add_remaining_self_loops``.
    """
    a = torch.as_tensor(adjacency).detach().to("cpu", torch.float32).clone()
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ConfigError(f"adjacency must be a square [V, V] matrix, got shape {tuple(a.shape)}")
    return with_self_loops(a) if self_loops else a


def with_self_loops(adjacency: torch.Tensor) -> torch.Tensor:
    """A copy of a [..., V, V] adjacency (one graph or a batch) with the diagonal set to 1 (A + I)."""
    a = adjacency.clone()
    a.diagonal(dim1=-2, dim2=-1).fill_(1)
    return a
