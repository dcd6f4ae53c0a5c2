"""The joint encoder every model shares: S -> X (joint embedding) -> H = G_E(A, X) (paper §3.1.1-3.1.2, Eq. 1).

    S [..., V, C]   joint coordinates of one frame of one person (any leading dims)
    X = S W + b (+ E_joint)                   embedding C -> D, and a learnable vector per joint (extension)
    H = G_E(A, X)                             L_D dense graph layers over the skeleton's adjacency A

SkeletonMAE (pre-training), GraphCL / JOAO (the contrastive baselines) and the SSL classifier (fine-tuning)
all hold one :class:`JointEncoder`; what they hand to each other is :meth:`JointEncoder.encoder_state`, and a
pre-trained encoder fits a model when their :class:`~skeletonmae.config.EncoderConfig` and input channels
are equal.

Masking happens between the embedding and the joint embedding: a masked joint's X is the [MASK] token, and
it still receives its joint's vector, as MAE adds position embeddings to its mask tokens. Without it,
mirror-symmetric joints and every masked joint look alike to the GIN.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import EncoderConfig
from ..nn.graph_net import GraphNet
from ..skeleton import get_layout


class JointEncoder(nn.Module):
    """Embedding, joint embedding and G_E for ``in_channels`` input channels, as ``config`` describes."""

    def __init__(self, config: EncoderConfig, in_channels: int):
        super().__init__()
        self.config, self.in_channels = config, in_channels
        self.layout = get_layout(config.layout)
        self.embed = nn.Linear(in_channels, config.dim)  # S -> X
        self.joint_embed = None
        if config.joint_embedding:
            self.joint_embed = nn.Parameter(torch.zeros(self.layout.num_joints, config.dim))
            nn.init.normal_(self.joint_embed, std=0.02)
        self.graph = self.new_graph()  # G_E

    def new_graph(self) -> GraphNet:
        """A freshly initialised G_E of this architecture (the SSL classifier's deeper STRL layers hold these)."""
        c = self.config
        adjacency = torch.as_tensor(self.layout.adjacency())
        return GraphNet(c.backbone, c.dim, c.dim, c.dim, c.layers, adjacency, norm=c.norm, act=c.act,
                        heads=c.gat_heads)

    def embed_joints(self, s: torch.Tensor, masked: torch.Tensor | None = None,
                     token: torch.Tensor | None = None) -> torch.Tensor:
        """X̄: the embedded joints [..., V, C] -> [..., V, D]; where ``masked`` [..., V] is True, ``token`` [D]."""
        x = self.embed(s)
        if masked is not None:
            x = torch.where(masked.unsqueeze(-1), token.to(x.dtype), x)
        return x if self.joint_embed is None else x + self.joint_embed

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """H = G_E(A, X) for every frame: [..., V, C] -> [..., V, D]."""
        lead = s.shape[:-2]
        h = self.graph(self.embed_joints(s.reshape(-1, *s.shape[-2:])))
        return h.reshape(*lead, *h.shape[-2:])

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The weights a downstream model loads: ``embed.*``, ``joint_embed`` and ``graph.*`` (G_E)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}
