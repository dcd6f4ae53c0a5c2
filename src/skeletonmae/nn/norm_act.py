"""The Norm-Act tail shared by every graph layer, and the norm / activation factories.

Tensors are [B, V, D] (B graphs of V joints); 'batchnorm' normalises each feature over all B·V nodes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

NORMS = ("batchnorm", "layernorm", "none")
ACTS = ("prelu", "relu", "elu", "gelu", "none")


class NodeBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the feature dim of a [..., D] tensor (statistics over all nodes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def make_norm(name: str, dim: int) -> nn.Module:
    if name == "batchnorm":
        return NodeBatchNorm(dim)
    if name == "layernorm":
        return nn.LayerNorm(dim)
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm '{name}'; choose one of {', '.join(NORMS)}")


def make_act(name: str, dim: int) -> nn.Module:
    acts = {"prelu": nn.PReLU, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "none": nn.Identity}
    if name not in acts:
        raise ConfigError(f"unknown activation '{name}'; choose one of {', '.join(ACTS)}")
    return acts[name]()


class NormAct(nn.Sequential):
    """Norm then activation; an identity for a decoder's last layer (``last=True``)."""

    def __init__(self, dim: int, norm: str = "batchnorm", act: str = "prelu", last: bool = False):
        super().__init__(*([] if last else [make_norm(norm, dim), make_act(act, dim)]))
