"""Dense GIN layer over skeleton joints (Xu et al., ICLR 2019), the SkeletonMAE backbone (paper §3.1).

    h_i' = MLP((1 + eps) h_i + sum_{j in N(i)} h_j)        i.e.  H' = MLP((1 + eps) H + A H)

with the GraphMAE-style MLP Linear-Norm-Act-Linear, followed by Norm-Act unless the layer is a decoder's
last. Dense: with ~17 joints ``A @ H`` over [B, V, D] beats sparse message passing by far.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm_act import NormAct, make_act, make_norm


class DenseGINConv(nn.Module):
    """GIN over a fixed graph. x: [B, V, in_dim] -> [B, V, out_dim]; ``adjacency`` [V, V] 0/1, no self loops."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        adjacency: torch.Tensor,
        hidden_dim: int | None = None,
        eps: float = 0.0,
        train_eps: bool = True,
        norm: str = "batchnorm",
        act: str = "prelu",
        last: bool = False,
    ):
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.register_buffer("adjacency", torch.as_tensor(adjacency, dtype=torch.float32), persistent=False)
        self.eps = nn.Parameter(torch.tensor([float(eps)]), requires_grad=train_eps)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), make_norm(norm, hidden_dim), make_act(act, hidden_dim),
            nn.Linear(hidden_dim, out_dim),
        )
        self.tail = NormAct(out_dim, norm, act, last)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """(1 + eps) H + A H."""
        return (1 + self.eps) * x + torch.matmul(self.adjacency.to(x.dtype), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.mlp(self.aggregate(x)))
