"""A stack of graph layers: the SkeletonMAE encoder G_E (L_D layers) and decoder G_D (one layer), Eq. 1."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .gat import DenseGATConv
from .gcn import DenseGCNConv
from .gin import DenseGINConv

BACKBONES = ("gin", "gcn", "gat")


def make_graph_layer(backbone: str, in_dim: int, out_dim: int, adjacency: torch.Tensor, heads: int = 4,
                     **kw) -> nn.Module:
    """One GIN / GCN / GAT layer with the shared Norm-Act tail (``norm``, ``act``, ``last`` in kw)."""
    if backbone == "gin":
        return DenseGINConv(in_dim, out_dim, adjacency, **kw)
    if backbone == "gcn":
        return DenseGCNConv(in_dim, out_dim, adjacency, **kw)
    if backbone == "gat":
        # an output layer averages its heads (GAT's convention), so any out_dim works
        return DenseGATConv(in_dim, out_dim, adjacency, heads=heads, concat=not kw.get("last", False), **kw)
    raise ConfigError(f"unknown graph backbone '{backbone}'; choose one of {', '.join(BACKBONES)}")


class GraphNet(nn.Module):
    """``num_layers`` graph layers in_dim -> hidden_dim -> ... -> out_dim over [B, V, D] tensors.

    ``last=True`` leaves the final layer without Norm-Act (a decoder's plain output).
    """

    def __init__(self, backbone: str, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 adjacency: torch.Tensor, norm: str = "batchnorm", act: str = "prelu", last: bool = False,
                 heads: int = 4, dropout: float = 0.0):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            make_graph_layer(backbone, dims[i], dims[i + 1], adjacency, heads=heads, norm=norm, act=act,
                             last=last and i == num_layers - 1)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(self.dropout(x))
        return x
