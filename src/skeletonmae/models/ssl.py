"""Skeleton Sequence Learning (SSL): the fine-tuned action classifier of paper §3.2 (Fig. 3, Eq. 3-4).

    S [N, P, T, V, C] --embed + temporal position embedding PE--> H^(0)      [N, P, T, V, D]
    for l in 1..M (STRL layers):
        SM(H)   = Repeat(SP(G_E(A, H)); V) ⊕ H                                   (Eq. 3)
        H       = ReLU(SM(H) W^(l) + H W_res^(l))                                 (Eq. 4; 1x1 residual, Fig. 3b)
        H^(l)   = multi-scale temporal convolution of H (stride s_l)          (CTR-GCN / MS-G3D style)
    pool over T, V and present persons -> MLP -> class logits

G_E in every SM is a copy of the pre-trained SkeletonMAE encoder (one per layer, all persons share it;
person slots are ordered by confidence, not identity). SP is the sum over joints and ⊕ an addition.
Choices the paper leaves open (design notes 5, 6), all documented here and selectable:

- person interaction (``person_fusion``): ``'mean'`` adds to each person's pooled global vector the mean
  of the other present persons' vectors, so two-person actions see each other; ``'none'`` keeps persons
  independent. Absent (all-zero) persons are masked out of the fusion, the features and the final pool.
- pooling (``pool``): ``'mean'`` (the paper's reading) averages over frames, joints and present persons
  into D features; ``'joint_stats'`` (an extension) keeps the joints apart, per joint the mean and the
  standard deviation over the present frames (``nn.pooling``), 2 · V · D features, standardised by a
  BatchNorm before the MLP. The coordinate-statistics baseline sees exactly this kind of summary.
- residual STRL layers (``rezero``, an extension): H^(l+1) = H^(l) + α_l · STRL(H^(l)) (the STRL(H) above, its
  input subsampled by the layer's stride on the skip path), with a learnt scalar α_l that starts at 0
  (ReZero, Bachlechner et al. 2020): training starts from the pooled embedding and takes as much of G_E and
  the temporal modelling as helps. ``drop_path`` p (stochastic depth, Huang et al. 2016): a training clip
  skips α_l · STRL(H) with probability p, the kept ones are scaled by 1 / (1 - p). Off by default (the paper's
  form); on the small sets here the plain layer over-fits (docs/investigation.md, section 10).
- widths stay D in every layer so that each SM can hold the pre-trained G_E; time is downsampled by the
  temporal strides (default 1, 2, 2).
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.graph_net import GraphNet
from ..nn.pooling import pool_per_joint
from ..nn.temporal import MultiScaleTemporalConv


class SpatialModelling(nn.Module):
    """SM (Eq. 3) with the person interaction: [N, P, T, V, D] -> [N, P, T, V, D]."""

    def __init__(self, encoder: GraphNet, person_fusion: str = "mean"):
        super().__init__()
        self.encoder, self.person_fusion = encoder, person_fusion

    def forward(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        n, p, t, v, d = h.shape
        g = self.encoder(h.reshape(-1, v, d)).reshape(n, p, t, v, -1)
        pooled = g.sum(dim=3) * present.unsqueeze(-1)  # SP over joints, absent persons 0: [N, P, T, D]
        if self.person_fusion == "mean" and p > 1:
            count = present.sum(dim=1, keepdim=True).unsqueeze(-1)  # [N, 1, T, 1]
            others = (pooled.sum(dim=1, keepdim=True) - pooled) / (count - 1).clamp_min(1)
            pooled = pooled + others * present.unsqueeze(-1)
        return pooled.unsqueeze(3) + h  # Repeat(SP(...); V) ⊕ H


class STRLayer(nn.Module):
    """One STRL layer: SM, Eq. 4 with the 1x1 residual, then multi-scale temporal modelling (optionally
    residual as a whole, with stochastic depth: see the module docstring)."""

    def __init__(self, encoder: GraphNet, dim: int, person_fusion: str, kernel_size: int, dilations: list[int],
                 stride: int, dropout: float, rezero: bool = False, drop_path: float = 0.0):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(())) if rezero else None  # α of H + α · STRL(H), 0 at the start
        self.drop_path = drop_path  # with rezero: the share of training clips that skip α · STRL(H)
        self.sm = SpatialModelling(encoder, person_fusion)
        self.w = nn.Linear(dim, dim)  # W^(l)
        self.residual = nn.Linear(dim, dim)  # the 1x1 convolution path of Fig. 3b
        self.norm = nn.BatchNorm2d(dim)
        self.temporal = MultiScaleTemporalConv(dim, dim, kernel_size=kernel_size, dilations=tuple(dilations),
                                               stride=stride, dropout=dropout)
        self.stride = stride

    def forward(self, h: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, p, t, v, d = h.shape
        y = self.w(self.sm(h, present)) + self.residual(h)  # [N, P, T, V, D]
        y = y.reshape(n * p, t, v, d).permute(0, 3, 1, 2)  # [N·P, D, T, V]
        y = torch.relu(self.temporal(torch.relu(self.norm(y))))
        t2 = y.shape[2]
        if self.stride > 1:  # a person is present in a strided frame if in any frame of its window
            present = nn.functional.max_pool1d(present.float().reshape(n * p, 1, t), self.stride, self.stride,
                                               ceil_mode=True).reshape(n, p, -1)[..., :t2] > 0
        y = y.permute(0, 2, 3, 1).reshape(n, p, t2, v, d)
        if self.gate is not None:
            y = self.gate * y
            if self.training and self.drop_path > 0:  # stochastic depth, per clip, rescaled to keep the mean
                keep = torch.rand(n, 1, 1, 1, 1, device=y.device) >= self.drop_path
                y = y * keep / (1 - self.drop_path)
            y = h[:, :, :: self.stride] + y
        return y * present[..., None, None], present


class SSLClassifier(nn.Module):
    """The SSL model: embedding + PE, M STRL layers, pooling, MLP classifier (§3.2)."""

    def __init__(self, in_channels: int, num_classes: int, encoder_factory, num_joints: int, clip_len: int,
                 dim: int = 64, strl_layers: int = 3, joint_embedding: bool = True, person_fusion: str = "mean",
                 temporal_kernel: int = 5, temporal_dilations: list[int] | tuple[int, ...] = (1, 2),
                 temporal_strides: list[int] | tuple[int, ...] = (1, 2, 2), head_hidden: int = 256,
                 dropout: float = 0.0, pool: str = "mean", rezero: bool = False, drop_path: float = 0.0):
        super().__init__()
        strides = list(temporal_strides) + [1] * max(0, strl_layers - len(temporal_strides))
        self.embed = nn.Linear(in_channels, dim)
        self.joint_embed = nn.Parameter(torch.zeros(num_joints, dim)) if joint_embedding else None
        self.time_embed = nn.Parameter(torch.zeros(clip_len, dim))  # learnable temporal position embedding PE
        nn.init.normal_(self.time_embed, std=0.02)
        self.layers = nn.ModuleList(
            STRLayer(encoder_factory(), dim, person_fusion, temporal_kernel, list(temporal_dilations), strides[i],
                     dropout, rezero, drop_path)
            for i in range(strl_layers)
        )
        self.pool = pool
        width = 2 * num_joints * dim if pool == "joint_stats" else dim
        head = [nn.BatchNorm1d(width)] if pool == "joint_stats" else []
        if head_hidden > 0:  # the paper's MLP; head_hidden = 0 gives a linear classifier
            head += [nn.Linear(width, head_hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = head_hidden
        self.head = nn.Sequential(*head, nn.Linear(width, num_classes))

    def load_pretrained(self, encoder_state: dict[str, torch.Tensor], layers: str = "all") -> None:
        """Put the pre-trained embedding and G_E into the input embedding and the SMs (strict).

        ``layers='all'`` (the paper) loads G_E into every STRL layer; ``'first'`` only into the first, whose
        input (embedded joints) is what G_E saw in pre-training; deeper layers see temporal features.
        """
        self.embed.load_state_dict({k.removeprefix("embed."): v for k, v in encoder_state.items()
                                    if k.startswith("embed.")})
        if self.joint_embed is not None and "joint_embed" in encoder_state:
            with torch.no_grad():
                self.joint_embed.copy_(encoder_state["joint_embed"])
        g_e = {k.removeprefix("encoder."): v for k, v in encoder_state.items() if k.startswith("encoder.")}
        for layer in self.layers if layers == "all" else self.layers[:1]:
            layer.sm.encoder.load_state_dict(g_e)

    def encoders(self) -> list[nn.Module]:
        return [layer.sm.encoder for layer in self.layers]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip features of x [N, P, T, V, C]: [N, D] (``pool='mean'``) or [N, 2 · V · D]."""
        present = x.ne(0).flatten(-2).any(-1)  # [N, P, T]
        h = self.embed(x)
        if self.joint_embed is not None:
            h = h + self.joint_embed
        h = (h + self.time_embed[: x.shape[2], None, :]) * present[..., None, None]
        for layer in self.layers:
            h, present = layer(h, present)
        if self.pool == "joint_stats":
            return pool_per_joint(h, present)
        weight = present[..., None, None].float()
        return (h * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) * h.shape[3]).clamp_min(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, classes] for x [N, P, T, V, C]."""
        return self.head(self.forward_features(x))
