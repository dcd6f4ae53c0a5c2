"""Multi-scale temporal convolution over [N, C, T, V] skeleton features, the temporal modelling of each STRL
layer (paper §3.2.1, "multi-scale temporal pooling [5, 38]": CTR-GCN, Chen et al. ICCV 2021, and MS-G3D,
Liu et al. CVPR 2020).

Parallel branches, each producing a share of the output channels, concatenated, plus a residual:

    dilated branch (one per dilation d):  1x1 conv -> BN -> ReLU -> (k x 1) conv, dilation d, stride s -> BN
    max-pool branch:                      1x1 conv -> BN -> ReLU -> (3 x 1) max-pool, stride s -> BN
    point branch:                         1x1 conv, stride s -> BN
    y = Dropout(concat(branches)) + residual(x)

Every temporal window is centred ('same' padding, not causal), so T_out = ceil(T / s), and T_out = T at s = 1.
Joints are never mixed: all kernels are 1 wide along V.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


def _split_channels(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive integers, the larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def _pointwise(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)), nn.BatchNorm2d(out_channels)]


class MultiScaleTemporalConv(nn.Module):
    """Multi-scale temporal convolution. x [N, C_in, T, V] -> [N, C_out, ceil(T / stride), V].

    With B = len(dilations) + 2 branches, the output channels C_out are split into B near-equal shares c_b:

        y_d    = BN(TConv_{k, d, s}(ReLU(BN(Conv1x1(x)))))     [N, c_d, T', V]   for each d in ``dilations``
        y_max  = BN(MaxPool_{3, s}(ReLU(BN(Conv1x1(x)))))      [N, c_max, T', V]
        y_1x1  = BN(Conv1x1_s(x))                              [N, c_1x1, T', V]
        y      = Dropout(concat(y_d..., y_max, y_1x1)) + R(x)  [N, C_out, T', V]

    TConv_{k, d, s} is a (k x 1) convolution with dilation d, stride s and padding d (k - 1) / 2 on both
    sides. R is the identity when C_in == C_out and s == 1, else a strided 1x1 conv + BN; it is absent
    (y has no residual) with ``residual=False``. No activation after the sum (the caller applies one).
    ``kernel_size`` must be odd so that every window is centred on its frame.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilations: tuple[int, ...] = (1, 2), stride: int = 1, residual: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"temporal kernel_size must be odd ('same' padding), got {kernel_size}")
        if stride < 1 or any(d < 1 for d in dilations):
            raise ConfigError(f"temporal stride and dilations must be >= 1, got {stride} and {tuple(dilations)}")
        num_branches = len(dilations) + 2
        if out_channels < num_branches:
            raise ConfigError(f"out_channels {out_channels} < the {num_branches} temporal branches")
        channels = _split_channels(out_channels, num_branches)

        def reduce(c: int) -> list[nn.Module]:  # 1x1 conv -> BN -> ReLU
            return [*_pointwise(in_channels, c), nn.ReLU(inplace=True)]

        branches = [
            nn.Sequential(
                *reduce(c),
                nn.Conv2d(c, c, (kernel_size, 1), stride=(stride, 1), padding=(d * (kernel_size - 1) // 2, 0),
                          dilation=(d, 1)),
                nn.BatchNorm2d(c),
            )
            for c, d in zip(channels[:-2], dilations, strict=True)
        ]
        c_max, c_point = channels[-2:]
        branches.append(nn.Sequential(*reduce(c_max), nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                                      nn.BatchNorm2d(c_max)))
        branches.append(nn.Sequential(*_pointwise(in_channels, c_point, stride)))
        self.branches = nn.ModuleList(branches)
        self.dropout = nn.Dropout(dropout)
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(*_pointwise(in_channels, out_channels, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.cat([branch(x) for branch in self.branches], dim=1))
        return y if self.residual is None else y + self.residual(x)
