"""Dense multi-head GAT layer over skeleton joints (Velickovic et al., ICLR 2018), an ablation backbone.

For each head k, with g_i = W_k h_i:

    e_ij = LeakyReLU(a_src,k · g_j + a_dst,k · g_i)          for j in N(i) ∪ {i}
    alpha_ij = softmax_j(e_ij),    h_i' = || _k  sum_j alpha_ij g_j   (concatenated heads) + b

(``concat=False``: the heads are averaged instead, as in a GAT's output layer.)

followed by Norm-Act unless the layer is a decoder's last. Attention is a masked softmax over the dense
V x V scores, so neighbours outside the skeleton graph get weight 0.
"""

from __future__ import annotations

import torch
from torch import nn

from .norm_act import NormAct


class DenseGATConv(nn.Module):
    """GAT over a fixed graph. x: [B, V, in_dim] -> [B, V, out_dim].

    With ``concat`` the heads are concatenated (out_dim % heads == 0), else averaged.
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor, heads: int = 4, concat: bool = True,
                 negative_slope: float = 0.2, norm: str = "batchnorm", act: str = "prelu", last: bool = False):
        super().__init__()
        if concat and out_dim % heads:
            raise ValueError(f"GAT out_dim {out_dim} must be divisible by heads {heads}")
        self.heads, self.concat = heads, concat
        self.head_dim = out_dim // heads if concat else out_dim
        a = torch.as_tensor(adjacency, dtype=torch.float32) + torch.eye(len(adjacency))
        self.register_buffer("blocked", a == 0, persistent=False)
        self.linear = nn.Linear(in_dim, heads * self.head_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, self.head_dim))
        self.att_dst = nn.Parameter(torch.empty(heads, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.leaky = nn.LeakyReLU(negative_slope)
        self.tail = NormAct(out_dim, norm, act, last)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, v, _ = x.shape
        g = self.linear(x).view(b, v, self.heads, self.head_dim)  # [B, V, H, d]
        src = (g * self.att_src).sum(-1)  # [B, V, H]
        dst = (g * self.att_dst).sum(-1)
        e = self.leaky(dst.transpose(1, 2)[..., :, None] + src.transpose(1, 2)[..., None, :])  # [B, H, i, j]
        alpha = e.masked_fill(self.blocked, float("-inf")).softmax(dim=-1)
        out = torch.matmul(alpha, g.transpose(1, 2))  # [B, H, V, d]
        out = out.transpose(1, 2).reshape(b, v, -1) if self.concat else out.mean(dim=1)
        return self.tail(out + self.bias)
