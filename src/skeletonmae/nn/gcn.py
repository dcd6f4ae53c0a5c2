"""Dense GCN layer over skeleton joints (Kipf & Welling, ICLR 2017), an ablation backbone (paper §3.1, Tab. 4).

    H' = D^-1/2 (A + I) D^-1/2 H W + b,     D_ii = sum_j (A + I)_ij

followed by Norm-Act unless the layer is a decoder's last. A per-graph adjacency [B, V, V] (augmented graphs
of contrastive pre-training) may replace A for one call; it is normalised per graph by the same formula.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm_act import NormAct, dense_adjacency, with_self_loops


def propagation(adjacency: torch.Tensor) -> torch.Tensor:
    """P = D^-1/2 (A + I) D^-1/2 of a loop-free 0/1 adjacency [..., V, V] (one graph or a batch)."""
    a = with_self_loops(adjacency)
    d = a.sum(-1).rsqrt()
    return d[..., :, None] * a * d[..., None, :]


class DenseGCNConv(nn.Module):
    """GCN over one fixed graph shared by a batch of B graphs.

    Shapes: ``adjacency`` A [V, V], 0/1, no self loops (``A[i, j] = 1`` if j sends to i);
    x [B, V, in_dim] -> [B, V, out_dim]. ``forward(x, adjacency)`` with a [B, V, V] adjacency computes
    each graph's own P_b from A_b instead of using the precomputed P.

        P  = D^-1/2 (A + I) D^-1/2        [V, V], precomputed (D = row sums of A + I, i.e. in-degrees + 1)
        H' = NormAct(P (X W) + b)         W: [in_dim, out_dim], b: [out_dim]

    Equal to PyG's ``GCNConv`` (self loops added, symmetric normalisation). ``last=True`` drops NormAct.
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor, norm: str = "batchnorm",
                 act: str = "prelu", last: bool = False):
        super().__init__()
        self.register_buffer("propagation", propagation(dense_adjacency(adjacency)), persistent=False)
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.tail = NormAct(out_dim, norm, act, last)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        p = self.propagation if adjacency is None else propagation(adjacency.to(x.dtype))
        return self.tail(torch.matmul(p.to(x.dtype), self.linear(x)) + self.bias)
