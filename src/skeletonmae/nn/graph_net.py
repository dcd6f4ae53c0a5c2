"""A stack of dense graph layers: the SkeletonMAE encoder G_E (L_D layers) and decoder G_D (one layer with a
plain linear output), paper §3.1.2, Eq. 1:  H = G_E(A, X̄),  Y = G_D(A, H).
"""

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
    """One GIN / GCN / GAT layer [B, V, in_dim] -> [B, V, out_dim] with the shared Norm-Act tail.

    ``kw`` goes to the layer (``norm``, ``act``, ``last``, and GIN's ``hidden_dim`` / ``eps`` / ``train_eps``
    or GAT's ``concat`` / ``negative_slope``); ``heads`` is used by GAT only. A GAT layer with ``last=True``
    averages its heads unless ``concat`` is given (GAT's output-layer convention), so any out_dim works.
    """
    if backbone == "gin":
        return DenseGINConv(in_dim, out_dim, adjacency, **kw)
    if backbone == "gcn":
        return DenseGCNConv(in_dim, out_dim, adjacency, **kw)
    if backbone == "gat":
        kw.setdefault("concat", not kw.get("last", False))
        return DenseGATConv(in_dim, out_dim, adjacency, heads=heads, **kw)
    raise ConfigError(f"unknown graph backbone '{backbone}'; choose one of {', '.join(BACKBONES)}")


class GraphNet(nn.Module):
    """``num_layers`` graph layers in_dim -> hidden_dim -> ... -> hidden_dim -> out_dim.

    x [B, V, in_dim] -> [B, V, out_dim], B = all frames of all persons. Each layer is
    ``layer(dropout(x))``; every layer ends in Norm-Act except the final one when ``last=True``
    (a decoder's plain output). ``adjacency`` [B, V, V] (0/1, no self loops), when given, replaces the
    fixed graph in every layer for this call: one graph per sample (augmented views, models/contrastive.py).
    """

    def __init__(self, backbone: str, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 adjacency: torch.Tensor, norm: str = "batchnorm", act: str = "prelu", last: bool = False,
                 heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if backbone not in BACKBONES:
            raise ConfigError(f"unknown graph backbone '{backbone}'; choose one of {', '.join(BACKBONES)}")
        if num_layers < 1:
            raise ConfigError(f"a graph network needs num_layers >= 1, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            make_graph_layer(backbone, dims[i], dims[i + 1], adjacency, heads=heads, norm=norm, act=act,
                             last=last and i == num_layers - 1)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(self.dropout(x), adjacency)
        return x
