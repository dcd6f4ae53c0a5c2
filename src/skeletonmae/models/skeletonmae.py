"""SkeletonMAE: the graph masked autoencoder of paper §3.1 (Fig. 2, Eq. 1-2).

Every frame of every person is one graph G = (V, A, X) over the joints:

    S [N, P, T, V, C]  --embed (C -> D)-->  X  --mask ([MASK] token on V̄)-->  X̄
    H = G_E(A, X̄)            encoder: L_D graph layers (GIN by default), [B, V, D]   (Eq. 1)
    Y = G_D(A, re-mask(W H))  decoder: one graph layer                               (Eq. 1)
    L = RCE(Y, target) on the masked joints                                           (Eq. 2)

All N·P·T frames are batched into one ``[B, V, D]`` tensor; frames of absent (zero-padded) persons are
dropped before the encoder, so they cost nothing and never enter the loss.

What is reconstructed is open in the paper (design note 1); ``mae.target`` selects it:

- ``'embedding'``: the literal Eq. 1 reading, the embedded features X. A trainable target collapses
  (a constant embedding gives cosine 1), so the target comes from an EMA copy of the embedding layer
  (no gradient), as in BYOL-style targets.
- ``'coords'`` (default): the raw joint input, GraphMAE's reading and that of Fig. 2c ("reconstructs the
  original input joint features"): each joint's coordinates relative to the frame's centroid of present
  joints (so the cosine compares directions from the body centre). It probed best of the three on the
  real data here (docs/results.md).
- ``'window'``: the joint's centred coordinates over a +-w frame window plus its velocity, so the
  decoder must infer the masked limb's short-term motion from its neighbours.

Extensions beyond the paper, all selectable: ``encoder.joint_embedding`` adds a learnable per-joint vector
to X̄ after masking (models/encoder.py); the encoder-to-decoder projection follows GraphMAE. GraphMAE also
*re-masks* (zeroes the masked nodes' codes before the decoder); with body-region masking that leaves a
one-layer decoder nothing to go on for joints whose neighbours are all masked (a wrist whose elbow is masked
gets the same output as every other such joint), so it is off by default (``mae.remask=true`` restores it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import EncoderConfig, MAEConfig
from ..nn.graph_net import GraphNet
from .encoder import JointEncoder
from .masking import JointMasker
from .rce import rce_loss


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
    """The SkeletonMAE encoder-decoder with its masking and loss, as ``encoder`` and ``mae`` describe.

    ``forward`` = :meth:`forward_encoder` (mask, embed, G_E) -> :meth:`forward_decoder` (G_D) ->
    :meth:`forward_loss` (RCE on the masked joints); the figures reuse the three steps.
    """

    def __init__(self, encoder: EncoderConfig, mae: MAEConfig, in_channels: int):
        super().__init__()
        self.config, self.in_channels = mae, in_channels
        self.encoder = JointEncoder(encoder, in_channels)  # embedding + G_E
        self.layout = self.encoder.layout
        self.masker = JointMasker.from_config(self.layout, mae)
        d = encoder.dim
        self.mask_token = nn.Parameter(torch.zeros(d))  # x_[M]
        nn.init.normal_(self.mask_token, std=0.02)
        self.enc_to_dec = nn.Linear(d, d, bias=False)
        out_dim = {"coords": in_channels, "window": (2 * mae.target_window + 2) * in_channels, "embedding": d}
        adjacency = torch.as_tensor(self.layout.adjacency())
        self.decoder = GraphNet(mae.decoder_backbone or encoder.backbone, d, d, out_dim[mae.target], 1, adjacency,
                                norm=encoder.norm, act=encoder.act, heads=encoder.gat_heads, last=True)  # G_D
        self.target_embed = None
        if mae.target == "embedding":
            self.target_embed = copy.deepcopy(self.encoder.embed).requires_grad_(False)

    @property
    def target(self) -> str:
        return self.config.target

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder features H = G_E(A, X) for every frame: [..., V, C] -> [..., V, D]."""
        return self.encoder(x)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        return self.encoder.encoder_state()

    # -- pre-training ----------------------------------------------------------------------------
    def targets(self, clips: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets for clips [n, T, V, C] -> [n, T, V, D_target]."""
        if self.target == "coords":
            return centred(clips)
        if self.target == "window":
            return window_target(clips, self.config.target_window)
        with torch.no_grad():
            return self.target_embed(clips)

    @torch.no_grad()
    def update_target(self) -> None:
        """EMA step of the target embedding (target='embedding' only)."""
        if self.target_embed is not None:
            for t, p in zip(self.target_embed.parameters(), self.encoder.embed.parameters(), strict=True):
                t.lerp_(p, 1.0 - self.config.ema_momentum)

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Mask and encode the frames that hold a person.

        Args:
            x: [N, P, T, V, C] (or [N, T, V, C]) normalised joint coordinates; all-zero persons are absent.
            mask: optional bool [N·P, T, V] (True = masked); drawn by the masker (from ``generator``) when None.
        Returns ``latent`` H = G_E(A, X̄) [B, V, D] of the B person-frames that hold a person, their flat
        indices ``frames`` into N·P·T, their ``mask`` [B, V] and the ``clips`` [N·P, T, V, C].
        """
        clips = x.reshape(-1, *x.shape[-3:])  # [n, T, V, C]
        n, t, v, _ = clips.shape
        if mask is None:
            mask = self.masker(n, t, device=x.device, generator=generator)
        frames = present_joints(clips).any(-1).flatten().nonzero().squeeze(1)  # person-frames holding a person
        s = clips.reshape(n * t, v, -1)[frames]
        m = mask.reshape(n * t, v)[frames]
        latent = self.encoder.graph(self.encoder.embed_joints(s, m, self.mask_token))  # H = G_E(A, X̄)
        return {"latent": latent, "frames": frames, "mask": m, "clips": clips}

    def forward_decoder(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Y = G_D(A, W H) [B, V, D_target] (re-masked first with ``mae.remask``)."""
        h = self.enc_to_dec(latent)
        if self.config.remask:
            h = h.masked_fill(mask.unsqueeze(-1), 0.0)
        return self.decoder(h)

    def forward_loss(self, clips: torch.Tensor, pred: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        """RCE (Eq. 2) between ``pred`` and the targets of the masked joints that were observed."""
        n, t, v, _ = clips.shape
        target = self.targets(clips).reshape(n * t, v, -1)[frames]
        scored = mask & present_joints(clips).reshape(n * t, v)[frames]
        loss = rce_loss(pred, target, scored, self.config.beta, self.config.rce_form)
        return {"loss": loss, "target": target, "mask": scored}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Mask, encode, decode and score a batch (arguments as :meth:`forward_encoder`).

        Returns a dict with ``loss`` and, for the frames that hold a person, ``pred`` / ``target``
        [B, V, D_target], ``mask`` [B, V] (masked joints that were observed) and ``frames``.
        """
        enc = self.forward_encoder(x, mask, generator)
        pred = self.forward_decoder(enc["latent"], enc["mask"])
        return {**self.forward_loss(enc["clips"], pred, enc["frames"], enc["mask"]), "pred": pred,
                "frames": enc["frames"]}
