"""Multi-scale temporal convolution (skeletonmae.nn.temporal), the temporal part of an STRL layer (§3.2.1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from skeletonmae.errors import ConfigError
from skeletonmae.nn import MultiScaleTemporalConv


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("t", [16, 15])
@pytest.mark.parametrize("channels", [(8, 8), (6, 16), (16, 10)])
def test_output_shape(stride, t, channels):
    c_in, c_out = channels
    m = MultiScaleTemporalConv(c_in, c_out, stride=stride)
    y = m(torch.randn(3, c_in, t, 17))
    assert y.shape == (3, c_out, math.ceil(t / stride), 17)


def test_channels_split_evenly_over_branches():
    m = MultiScaleTemporalConv(8, 10, dilations=(1, 2))  # 4 branches: 3 + 3 + 2 + 2
    widths = [branch[-1].num_features for branch in m.branches]
    assert widths == [3, 3, 2, 2] and sum(widths) == 10
    assert len(MultiScaleTemporalConv(8, 10, dilations=(1, 2, 3, 4)).branches) == 6


def test_residual_kinds():
    assert isinstance(MultiScaleTemporalConv(8, 8).residual, nn.Identity)
    assert isinstance(MultiScaleTemporalConv(8, 8, stride=2).residual, nn.Sequential)
    assert isinstance(MultiScaleTemporalConv(8, 12).residual, nn.Sequential)
    assert MultiScaleTemporalConv(8, 8, residual=False).residual is None


@pytest.mark.parametrize("residual", [True, False])
def test_same_padding_centred_receptive_field(residual):
    """T is preserved at stride 1 and frame t0 reaches frames t0 + o for exactly the taps o of the branches,
    symmetric around t0 (centred windows, not causal): o in d * {-(k-1)/2 .. (k-1)/2} per dilation d, and
    {-1, 0, 1} for the max-pool."""
    torch.manual_seed(0)
    k, dilations = 5, (1, 3)
    m = MultiScaleTemporalConv(4, 8, kernel_size=k, dilations=dilations, residual=residual).eval()
    x = torch.randn(2, 4, 32, 5)
    t0 = 16
    x2 = x.clone()
    x2[:, :, t0] += 1.0
    y, y2 = m(x), m(x2)
    assert y.shape == (2, 8, 32, 5)
    changed = (y2 - y).abs().amax(dim=(0, 1, 3)) > 1e-6  # [T]
    taps = {d * o for d in dilations for o in range(-(k // 2), k // 2 + 1)} | {-1, 0, 1}
    expected = torch.tensor([t - t0 in taps for t in range(32)])
    assert torch.equal(changed, expected)


def test_joints_do_not_mix():
    m = MultiScaleTemporalConv(4, 8).eval()
    x = torch.randn(2, 4, 12, 5)
    x2 = x.clone()
    x2[..., 2] += 1.0
    changed = (m(x2) - m(x)).abs().amax(dim=(0, 1, 2)) > 1e-6
    assert changed.tolist() == [False, False, True, False, False]


def test_gradients_flow_with_dropout():
    torch.manual_seed(0)
    m = MultiScaleTemporalConv(6, 12, stride=2, dropout=0.2)
    x = torch.randn(4, 6, 16, 17, requires_grad=True)
    y = m(x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_invalid_configs():
    with pytest.raises(ConfigError, match="odd"):
        MultiScaleTemporalConv(8, 8, kernel_size=4)
    with pytest.raises(ConfigError, match="branches"):
        MultiScaleTemporalConv(8, 3, dilations=(1, 2))
    with pytest.raises(ConfigError, match=">= 1"):
        MultiScaleTemporalConv(8, 8, stride=0)
