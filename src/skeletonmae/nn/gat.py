"""Dense multi-head GAT layer over skeleton joints (Velickovic et al., ICLR 2018), an ablation backbone
(paper §3.1, Tab. 4).

For each head k = 1..K, with g_i = W_k h_i:

    e_ij = LeakyReLU(a_src,k · g_j + a_dst,k · g_i)          for j in N(i) ∪ {i}
    alpha_ij = softmax_j(e_ij),    h_i' = || _k  sum_j alpha_ij g_j  + b    (heads concatenated)

(``concat=False``: the heads are averaged instead, as in a GAT's output layer), followed by Norm-Act unless
the layer is a decoder's last. Attention is a masked softmax over the dense V x V scores, so joints that are
not neighbours get weight exactly 0. Same parameters and result as PyG's ``GATConv`` (no attention dropout).
A per-graph adjacency [B, V, V] (augmented graphs of contrastive pre-training) may replace A for one call; it
masks each graph's attention by its own edges.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .norm_act import NormAct, dense_adjacency, with_self_loops


class DenseGATConv(nn.Module):
    """GAT over one fixed graph shared by a batch of B graphs.

    Shapes: ``adjacency`` A [V, V], 0/1, no self loops (``A[i, j] = 1`` if j sends to i);
    x [B, V, in_dim] -> [B, V, out_dim]. ``forward(x, adjacency)`` with a [B, V, V] adjacency masks graph b
    by (A_b + I) instead of the fixed A + I.

        G = X W                         [B, V, K, d]   (d = out_dim // K with ``concat``, else out_dim)
        E = LeakyReLU(G a_dst [i] + G a_src [j])    [B, K, V_i, V_j], -inf where (A + I)_ij = 0
        H' = NormAct(concat_k(softmax_j(E) G) + b)  [B, V, out_dim]   (mean over k if not ``concat``)
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: torch.Tensor, heads: int = 4, concat: bool = True,
                 negative_slope: float = 0.2, norm: str = "batchnorm", act: str = "prelu", last: bool = False):
        super().__init__()
        if concat and out_dim % heads:
            raise ConfigError(f"GAT out_dim {out_dim} must be divisible by heads {heads} (or use concat=False)")
        self.heads, self.concat = heads, concat
        self.head_dim = out_dim // heads if concat else out_dim
        self.register_buffer("blocked", dense_adjacency(adjacency, self_loops=True) == 0, persistent=False)
        self.linear = nn.Linear(in_dim, heads * self.head_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, self.head_dim))
        self.att_dst = nn.Parameter(torch.empty(heads, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.leaky = nn.LeakyReLU(negative_slope)
        self.tail = NormAct(out_dim, norm, act, last)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        b, v, _ = x.shape
        blocked = self.blocked if adjacency is None else (with_self_loops(adjacency) == 0)[:, None]  # [B, 1, V, V]
        g = self.linear(x).view(b, v, self.heads, self.head_dim).transpose(1, 2)  # [B, K, V, d]
        src = (g * self.att_src[:, None]).sum(-1)  # [B, K, V]
        dst = (g * self.att_dst[:, None]).sum(-1)
        e = self.leaky(dst[..., :, None] + src[..., None, :])  # [B, K, i, j]
        alpha = e.masked_fill(blocked, float("-inf")).softmax(dim=-1)  # self loops: no empty row
        out = torch.matmul(alpha, g)  # [B, K, V, d]
        out = out.transpose(1, 2).reshape(b, v, -1) if self.concat else out.mean(dim=1)
        return self.tail(out + self.bias)
