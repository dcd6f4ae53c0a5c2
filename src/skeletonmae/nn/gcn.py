"""Dense GCN layer over skeleton joints (Kipf & Welling, ICLR 2017), an ablation backbone (paper §3.1, Tab. 4).

    H' = D^-1/2 (A + I) D^-1/2 H W + b,     D_ii = sum_j (A + I)_ij

followed by Norm-Act unless the layer is a decoder's last.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm_act import NormAct, dense_adjacency


class DenseGCNConv(nn.Module):
    """GCN over one fixed graph shared by a batch of B graphs.

    Shapes: ``adjacency`` A [V, V], 0/1, no self loops (``A[i, j] = 1`` if j sends to i);
    x [B, V, in_dim] -> [B, V, out_dim].

        P  = D^-1/2 (A + I) D^-1/2        [V, V], precomputed (D = row sums of A + I, i.e. in-degrees + 1)
        H' = NormAct(P (X W) + b)         W: [in_dim, out_dim], b: [out_dim]

    Equal to PyG's ``GCNConv`` (self loops added, symmetric normalisation). ``last=True`` drops NormAct.
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor, norm: str = "batchnorm",
                 act: str = "prelu", last: bool = False):
        super().__init__()
        a = dense_adjacency(adjacency, self_loops=True)
        d = a.sum(1).rsqrt()
        self.register_buffer("propagation", d[:, None] * a * d[None, :], persistent=False)
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.tail = NormAct(out_dim, norm, act, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(torch.matmul(self.propagation.to(x.dtype), self.linear(x)) + self.bias)
