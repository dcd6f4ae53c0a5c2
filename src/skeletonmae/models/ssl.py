"""Skeleton Sequence Learning (SSL): the fine-tuned action classifier of paper §3.2 (Fig. 3, Eq. 3-4).

    S [N, P, T, V, C] --embed + temporal position embedding PE--> H^(0)      [N, P, T, V, D]
    for l in 1..M (STRL layers):
        SM(H)   = Repeat(SP(G_E(A, H)); V) ⊕ H                                   (Eq. 3)
        H       = ReLU(SM(H) W^(l) + H W_res^(l))                                 (Eq. 4; 1x1 residual, Fig. 3b)
        H^(l)   = multi-scale temporal convolution of H (stride s_l)          (CTR-GCN / MS-G3D style)
    pool over T, V and present persons -> MLP -> class logits

G_E in every SM has the pre-trained SkeletonMAE encoder's architecture (one per layer, all persons share
it; person slots are ordered by confidence, not identity); the first is the joint encoder's own
(models/encoder.py). SP is the sum over joints and ⊕ an addition. Choices the paper leaves open (design
notes 5, 6), all documented here and selectable:

- person interaction (``classifier.person_fusion``): ``'mean'`` adds to each person's pooled global vector
  the mean of the other present persons' vectors, so two-person actions see each other; ``'none'`` keeps
  persons independent. Absent (all-zero) persons are masked out of the fusion, the features and the pool.
- pooling (``classifier.pool``): ``'mean'`` (the paper's reading) averages over frames, joints and present
  persons into D features; ``'joint_stats'`` (an extension) keeps the joints apart, per joint the mean and
  the standard deviation over the present frames (``nn.pooling``), 2 · V · D features, standardised by a
  BatchNorm before the MLP. The coordinate-statistics baseline sees exactly this kind of summary.
- residual STRL layers (``classifier.rezero``, an extension): H^(l+1) = H^(l) + α_l · STRL(H^(l)) (the
  STRL(H) above, its input subsampled by the layer's stride on the skip path), with a learnt scalar α_l that
  starts at 0 (ReZero, Bachlechner et al. 2020): training starts from the pooled embedding and takes as much
  of G_E and the temporal modelling as helps. ``classifier.drop_path`` p (stochastic depth, Huang et al.
  2016): a training clip skips α_l · STRL(H) with probability p, the kept ones are scaled by 1 / (1 - p). Off
  by default (the paper's form); on the small sets here the plain layer over-fits (docs/investigation.md,
  section 10).
- widths stay D in every layer so that each SM can hold the pre-trained G_E; time is downsampled by the
  temporal strides (default 1, 2, 2).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ClassifierConfig, EncoderConfig
from ..nn.graph_net import GraphNet
from ..nn.pooling import pool_per_joint
from ..nn.temporal import MultiScaleTemporalConv
from .encoder import JointEncoder


class SpatialModelling(nn.Module):
    """The global context of SM (Eq. 3), SP(G_E(A, H)) with the person interaction: [N, P, T, V, D] ->
    [N, P, T, D], G_E given per call. SM(H) = Repeat(context; V) ⊕ H is formed inside Eq. 4 (STRLayer)."""

    def __init__(self, person_fusion: str = "mean"):
        super().__init__()
        self.person_fusion = person_fusion

    def forward(self, h: torch.Tensor, present: torch.Tensor, graph: GraphNet) -> torch.Tensor:
        n, p, t, v, d = h.shape
        g = graph(h.reshape(-1, v, d)).reshape(n, p, t, v, -1)
        pooled = g.sum(dim=3) * present.unsqueeze(-1)  # SP over joints, absent persons 0: [N, P, T, D]
        if self.person_fusion == "mean" and p > 1:
            count = present.sum(dim=1, keepdim=True).unsqueeze(-1)  # [N, 1, T, 1]
            others = (pooled.sum(dim=1, keepdim=True) - pooled) / (count - 1).clamp_min(1)
            pooled = pooled + others * present.unsqueeze(-1)
        return pooled


class STRLayer(nn.Module):
    """One STRL layer: SM with the layer's G_E, Eq. 4 with the 1x1 residual, then multi-scale temporal
    modelling (optionally residual as a whole, with stochastic depth: see the module docstring)."""

    def __init__(self, dim: int, config: ClassifierConfig, stride: int):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(())) if config.rezero else None  # α of H + α · STRL(H), 0 at first
        self.drop_path = config.drop_path  # with rezero: the share of training clips that skip α · STRL(H)
        self.sm = SpatialModelling(config.person_fusion)
        self.w = nn.Linear(dim, dim)  # W^(l)
        self.residual = nn.Linear(dim, dim)  # the 1x1 convolution path of Fig. 3b
        self.norm = nn.BatchNorm2d(dim)
        self.temporal = MultiScaleTemporalConv(dim, dim, kernel_size=config.temporal_kernel,
                                               dilations=tuple(config.temporal_dilations), stride=stride,
                                               dropout=config.dropout)
        self.stride = stride

    def spatial(self, h: torch.Tensor, present: torch.Tensor, graph: GraphNet) -> torch.Tensor:
        """Eq. 4 before its ReLU, SM(H) W + H W_res, [N, P, T, V, D]. With SM(H) = Repeat(context; V) ⊕ H
        (Eq. 3) the sum is H (W + W_res) + (b + b_res) + Repeat(context W; V): one product over the
        [N, P, T, V, D] features instead of two, and no [N, P, T, V, D] sum for SM."""
        context = self.sm(h, present, graph)  # [N, P, T, D]
        w, res = self.w, self.residual
        y = nn.functional.linear(h, w.weight + res.weight, w.bias + res.bias)
        return y + nn.functional.linear(context, w.weight).unsqueeze(3)

    def forward(self, h: torch.Tensor, present: torch.Tensor, graph: GraphNet) -> tuple[torch.Tensor, torch.Tensor]:
        n, p, t, v, d = h.shape
        y = self.spatial(h, present, graph).reshape(n * p, t, v, d).permute(0, 3, 1, 2)  # [N·P, D, T, V]
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
    """The SSL model (§3.2): joint encoder + PE, M STRL layers, pooling, MLP classifier.

    The first STRL layer's G_E is the joint encoder's own (``encoder.graph``), the one pre-training trains;
    deeper layers hold G_E copies of their own (``graphs``), loaded too with ``pretrained_layers='all'``.
    """

    def __init__(self, encoder: EncoderConfig, classifier: ClassifierConfig, in_channels: int, num_classes: int,
                 clip_len: int):
        super().__init__()
        c, d, m = classifier, encoder.dim, classifier.strl_layers
        self.config = classifier
        self.encoder = JointEncoder(encoder, in_channels)
        num_joints = self.encoder.layout.num_joints
        self.time_embed = nn.Parameter(torch.zeros(clip_len, d))  # learnable temporal position embedding PE
        nn.init.normal_(self.time_embed, std=0.02)
        strides = list(c.temporal_strides) + [1] * max(0, m - len(c.temporal_strides))
        self.layers = nn.ModuleList(STRLayer(d, c, strides[i]) for i in range(m))
        self.graphs = nn.ModuleList(self.encoder.new_graph() for _ in range(max(0, m - 1)))
        width = 2 * num_joints * d if c.pool == "joint_stats" else d
        head = [nn.BatchNorm1d(width)] if c.pool == "joint_stats" else []
        if c.head_hidden > 0:  # the paper's MLP; head_hidden = 0 gives a linear classifier
            head += [nn.Linear(width, c.head_hidden), nn.ReLU(), nn.Dropout(c.dropout)]
            width = c.head_hidden
        self.head = nn.Sequential(*head, nn.Linear(width, num_classes))

    @property
    def num_classes(self) -> int:
        return self.head[-1].out_features

    def layer_graphs(self) -> list[GraphNet]:
        """G_E of each STRL layer, first to last."""
        return [self.encoder.graph, *self.graphs][: len(self.layers)]

    def load_pretrained(self, encoder_state: dict[str, torch.Tensor], layers: str = "all") -> None:
        """Load a pre-trained joint encoder (embedding, joint embedding, G_E) (strict).

        ``layers='all'`` (the paper) also copies G_E into every deeper STRL layer; ``'first'`` only into the first,
        whose input (embedded joints) is what G_E saw in pre-training; deeper layers see temporal features.
        """
        self.encoder.load_state_dict(encoder_state)
        if layers == "all":
            g_e = {k.removeprefix("graph."): v for k, v in encoder_state.items() if k.startswith("graph.")}
            for graph in self.graphs:
                graph.load_state_dict(g_e)

    def pretrained_parameters(self, layers: str = "all") -> list[nn.Parameter]:
        """The parameters :meth:`load_pretrained` fills with ``layers`` (whether or not anything was loaded)."""
        params = list(self.encoder.parameters())
        return params + list(self.graphs.parameters()) if layers == "all" else params

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip features of x [N, P, T, V, C]: [N, D] (``pool='mean'``) or [N, 2 · V · D]."""
        present = x.ne(0).flatten(-2).any(-1)  # [N, P, T]
        h = self.encoder.embed_joints(x)
        h = (h + self.time_embed[: x.shape[2], None, :]) * present[..., None, None]
        for layer, graph in zip(self.layers, self.layer_graphs(), strict=True):
            h, present = layer(h, present, graph)
        if self.config.pool == "joint_stats":
            return pool_per_joint(h, present)
        weight = present[..., None, None].float()
        return (h * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) * h.shape[3]).clamp_min(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, classes] for x [N, P, T, V, C]."""
        return self.head(self.forward_features(x))

    def predict_clips(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities [N, classes] of samples given as K clips each, x [N, K, P, T, V, C]: the softmax
        of every clip, averaged over the K clips (multi-clip testing, §4.2)."""
        n, k = x.shape[:2]
        return self.forward(x.flatten(0, 1)).softmax(-1).reshape(n, k, -1).mean(1)
