"""SkeletonMAE: the graph masked autoencoder of paper §3.1 (Fig. 2, Eq. 1-2).

Every frame of every person is one graph G = (V, A, X) over the joints:

    S [N, P, T, V, C]  --embed (C -> D)-->  X  --mask ([MASK] token on V̄)-->  X̄
    H = G_E(A, X̄)            encoder: L_D graph layers (GIN by default), [B, V, D]   (Eq. 1)
    Y = G_D(A, re-mask(W H))  decoder: one graph layer                               (Eq. 1)
    L = RCE(Y, target) on the masked joints                                           (Eq. 2)

All N·P·T frames are batched into one ``[B, V, D]`` tensor; frames of absent (zero-padded) persons are
dropped before the encoder, so they cost nothing and never enter the loss.

What is reconstructed is open in the paper (design note 1); ``target`` selects it:

- ``'embedding'``: the literal Eq. 1 reading, the embedded features X. A trainable target collapses
  (a constant embedding gives cosine 1), so the target comes from an EMA copy of the embedding layer
  (no gradient), as in BYOL-style targets.
- ``'coords'`` (default): the raw joint input, GraphMAE's reading and that of Fig. 2c ("reconstructs the
  original input joint features"): each joint's coordinates relative to the frame's centroid of present
  joints (so the cosine compares directions from the body centre). It probed best of the three on the
  real data here (README).
- ``'window'``: the joint's centred coordinates over a +-w frame window plus its velocity, so the
  decoder must infer the masked limb's short-term motion from its neighbours.

Extensions beyond the paper, all selectable: ``joint_embedding`` adds a learnable per-joint vector to
X̄ after masking, as MAE adds position embeddings to its mask tokens (without it, mirror-symmetric
joints, and every masked joint, look alike to the GIN); the encoder-to-decoder projection follows
GraphMAE. GraphMAE also *re-masks* (zeroes the masked nodes' codes before the decoder); with body-region
masking that leaves a one-layer decoder nothing to go on for joints whose neighbours are all masked
(a wrist whose elbow is masked gets the same output as every other such joint), so it is off by
default (``remask=True`` restores it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..nn.graph_net import GraphNet
from ..skeleton import Layout, get_layout
from .masking import JointMasker
from .rce import rce_loss

TARGETS = ("coords", "window", "embedding")


def present_joints(x: torch.Tensor) -> torch.Tensor:
    """True where a joint has any non-zero coordinate: [..., V, C] -> [..., V]."""
    return x.ne(0).any(dim=-1)


def centred(x: torch.Tensor) -> torch.Tensor:
    """Coordinates relative to each frame's centroid of present joints; absent joints stay 0. [..., V, C]."""
    valid = present_joints(x).unsqueeze(-1).to(x.dtype)
    centroid = (x * valid).sum(-2, keepdim=True) / valid.sum(-2, keepdim=True).clamp_min(1)
    return (x - centroid) * valid


def window_target(x: torch.Tensor, w: int) -> torch.Tensor:
    """For every frame t: the joint's coordinates at t-w..t+w (clamped at the clip's ends) relative to
    the centroid at frame t, and its central-difference velocity at t.

    x: [n, T, V, C] -> [n, T, V, (2w + 2) C]. Entries of frames where the joint is absent are 0.
    """
    t = x.shape[1]
    steps = torch.arange(t, device=x.device)
    valid = present_joints(x).unsqueeze(-1).to(x.dtype)  # [n, T, V, 1]
    centroid = (x * valid).sum(-2, keepdim=True) / valid.sum(-2, keepdim=True).clamp_min(1)  # [n, T, 1, C]
    idx = (steps[:, None] + torch.arange(-w, w + 1, device=x.device)).clamp(0, t - 1)  # [T, 2w+1]
    rel = (x[:, idx] - centroid.unsqueeze(2)) * valid[:, idx] * valid.unsqueeze(2)  # [n, T, 2w+1, V, C]
    nxt, prv = x[:, (steps + 1).clamp(max=t - 1)], x[:, (steps - 1).clamp(min=0)]
    velocity = (nxt - prv) / 2 * valid
    return torch.cat([rel.permute(0, 1, 3, 2, 4).flatten(-2), velocity], dim=-1)


class SkeletonMAE(nn.Module):
    """The SkeletonMAE encoder-decoder with its masking and loss.

    Args:
        in_channels: C of the input (2 for (x, y), 3 for (x, y, z) or (x, y, score)).
        layout: the skeleton layout (adjacency A and body regions).
        dim: D, the joint feature width (paper: 64).
        encoder_layers: L_D (paper: 3).
        backbone / decoder_backbone: 'gin' (paper), 'gcn' or 'gat' (Tab. 4c).
        joint_embedding, remask: extensions / GraphMAE's re-masking (module docstring).
        target, target_window: what is reconstructed (module docstring).
        beta, rce_form: RCE exponent and normalisation (Eq. 2).
        masker: the :class:`JointMasker` (body regions by default).
    """

    def __init__(
        self,
        in_channels: int,
        layout: str | Layout = "coco17",
        dim: int = 64,
        encoder_layers: int = 3,
        backbone: str = "gin",
        decoder_backbone: str | None = None,
        norm: str = "batchnorm",
        act: str = "prelu",
        gat_heads: int = 4,
        joint_embedding: bool = True,
        remask: bool = False,
        target: str = "coords",
        target_window: int = 2,
        beta: float = 2.0,
        rce_form: str = "graphmae",
        masker: JointMasker | None = None,
    ):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.layout = get_layout(layout)
        v = self.layout.num_joints
        adjacency = torch.as_tensor(self.layout.adjacency())
        self.in_channels, self.dim = in_channels, dim
        self.target, self.target_window, self.beta, self.rce_form = target, target_window, beta, rce_form
        self.remask = remask
        self.masker = masker or JointMasker(self.layout)

        self.embed = nn.Linear(in_channels, dim)  # S -> X
        self.joint_embed = nn.Parameter(torch.zeros(v, dim)) if joint_embedding else None
        self.mask_token = nn.Parameter(torch.zeros(dim))  # x_[M]
        common = dict(adjacency=adjacency, norm=norm, act=act, heads=gat_heads)
        self.encoder = GraphNet(backbone, dim, dim, dim, encoder_layers, **common)  # G_E
        self.enc_to_dec = nn.Linear(dim, dim, bias=False)
        out_dim = {"coords": in_channels, "window": (2 * target_window + 2) * in_channels, "embedding": dim}[target]
        self.decoder = GraphNet(decoder_backbone or backbone, dim, dim, out_dim, 1, last=True, **common)  # G_D
        self.target_embed = None
        if target == "embedding":
            self.target_embed = copy.deepcopy(self.embed).requires_grad_(False)
        nn.init.normal_(self.mask_token, std=0.02)
        if self.joint_embed is not None:
            nn.init.normal_(self.joint_embed, std=0.02)

    # -- shared by pre-training and downstream use -------------------------------------------------
    def embed_joints(self, s: torch.Tensor) -> torch.Tensor:
        """X = S W + b (+ joint embedding): [..., V, C] -> [..., V, D]."""
        x = self.embed(s)
        return x if self.joint_embed is None else x + self.joint_embed

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder features H = G_E(A, X) for every frame: [..., V, C] -> [..., V, D]."""
        lead = x.shape[:-2]
        h = self.encoder(self.embed_joints(x.reshape(-1, *x.shape[-2:])))
        return h.reshape(*lead, *h.shape[-2:])

    # -- pre-training ----------------------------------------------------------------------------
    def targets(self, clips: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets for clips [n, T, V, C] -> [n, T, V, D_target]."""
        if self.target == "coords":
            return centred(clips)
        if self.target == "window":
            return window_target(clips, self.target_window)
        with torch.no_grad():
            return self.target_embed(clips)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step of the target embedding (target='embedding' only)."""
        if self.target_embed is not None:
            for t, p in zip(self.target_embed.parameters(), self.embed.parameters(), strict=True):
                t.lerp_(p, 1.0 - momentum)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Mask, encode, decode and score a batch.

        Args:
            x: [N, P, T, V, C] (or [N, T, V, C]) normalised joint coordinates; all-zero persons are absent.
            mask: optional bool [N·P, T, V] (True = masked); drawn by the masker (from ``generator``) when None.
        Returns a dict with ``loss`` and, for the frames that hold a person, ``pred`` / ``target``
        [B, V, D_target], ``mask`` [B, V] and ``frames`` (their flat indices into N·P·T).
        """
        clips = x.reshape(-1, *x.shape[-3:])  # [n, T, V, C]
        n, t, v, _ = clips.shape
        if mask is None:
            mask = self.masker(n, t, device=x.device, generator=generator)
        joints = present_joints(clips)  # [n, T, V]
        frames = joints.any(-1).flatten().nonzero().squeeze(1)  # person-frames that hold a person
        s = clips.reshape(n * t, v, -1)[frames]
        m = mask.reshape(n * t, v)[frames]

        h = torch.where(m.unsqueeze(-1), self.mask_token.to(s.dtype), self.embed(s))  # X̄
        if self.joint_embed is not None:  # after masking, so a masked joint still knows which joint it is
            h = h + self.joint_embed
        h = self.enc_to_dec(self.encoder(h))  # H = G_E(A, X̄)
        if self.remask:
            h = h.masked_fill(m.unsqueeze(-1), 0.0)
        pred = self.decoder(h)  # Y = G_D(A, H)
        target = self.targets(clips).reshape(n * t, v, -1)[frames]
        scored = m & joints.reshape(n * t, v)[frames]  # masked joints that were observed
        loss = rce_loss(pred, target, scored, self.beta, self.rce_form)
        return {"loss": loss, "pred": pred, "target": target, "mask": scored, "frames": frames}

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The weights a downstream model needs: embedding, joint embedding and G_E."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(("embed.", "joint_embed", "encoder."))}
