"""Multi-scale temporal convolution (CTR-GCN / MS-G3D style), the temporal modelling of each STRL layer
(paper §3.2.1: "we adopt the widely-used multi-scale temporal pooling [5, 38]").

On x [N, C, T, V]: parallel branches, concatenated along channels,

    for each dilation d:  1x1 conv -> BN -> ReLU -> (k x 1) conv, dilation d, stride s -> BN
    max-pool branch:      1x1 conv -> BN -> ReLU -> (3 x 1) max-pool, stride s -> BN
    point branch:         1x1 conv, stride s -> BN

then ``+ residual(x)`` (identity when shapes match, else 1x1 conv with stride + BN) and ReLU.
Padding keeps T at stride 1 and gives ceil(T / s) frames at stride s.
"""

from __future__ import annotations

import torch
from torch import nn


def _unit(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=(stride, 1)), nn.BatchNorm2d(out_ch))


class MultiScaleTemporalConv(nn.Module):
    """x [N, in_channels, T, V] -> [N, out_channels, ceil(T / stride), V]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, dilations=(1, 2), stride: int = 1,
                 residual: bool = True, dropout: float = 0.0):
        super().__init__()
        n_branches = len(dilations) + 2
        widths = [out_channels // n_branches] * n_branches
        widths[0] += out_channels - sum(widths)
        branches = []
        for width, d in zip(widths, dilations, strict=False):
            pad = (kernel_size - 1) * d // 2
            branches.append(nn.Sequential(
                nn.Conv2d(in_channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, (kernel_size, 1), stride=(stride, 1), padding=(pad, 0), dilation=(d, 1)),
                nn.BatchNorm2d(width),
            ))
        w_pool, w_point = widths[-2], widths[-1]
        branches.append(nn.Sequential(
            nn.Conv2d(in_channels, w_pool, 1), nn.BatchNorm2d(w_pool), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)), nn.BatchNorm2d(w_pool),
        ))
        branches.append(_unit(in_channels, w_point, stride))
        self.branches = nn.ModuleList(branches)
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = _unit(in_channels, out_channels, stride)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([branch(x) for branch in self.branches], dim=1)
        if self.residual is not None:
            out = out + self.residual(x)
        return self.dropout(torch.relu(out))
