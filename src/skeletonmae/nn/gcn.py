"""Dense GCN layer over skeleton joints (Kipf & Welling, ICLR 2017), an ablation backbone (Tab. 4c).

    H' = D^-1/2 (A + I) D^-1/2 H W + b,     D_ii = sum_j (A + I)_ij

followed by Norm-Act unless the layer is a decoder's last.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm_act import NormAct


class DenseGCNConv(nn.Module):
    """GCN over a fixed graph. x: [B, V, in_dim] -> [B, V, out_dim]; ``adjacency`` [V, V] 0/1, no self loops."""

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor, norm: str = "batchnorm",
                 act: str = "prelu", last: bool = False):
        super().__init__()
        a = torch.as_tensor(adjacency, dtype=torch.float32) + torch.eye(len(adjacency))
        d = a.sum(1).rsqrt()
        self.register_buffer("propagation", d[:, None] * a * d[None, :], persistent=False)
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.tail = NormAct(out_dim, norm, act, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(torch.matmul(self.propagation.to(x.dtype), self.linear(x)) + self.bias)
