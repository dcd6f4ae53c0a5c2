"""GraphCL and JOAO: the contrastive pre-training baselines of paper Tab. 4b (§4.4), on the SkeletonMAE encoder.

The paper compares SkeletonMAE with two graph contrastive methods used as pre-training of the same encoder:
GraphCL (You et al., NeurIPS 2020) and JOAO (You et al., ICML 2021, JOAOv1). Both contrast two augmented
views of every graph:

    S --embed, augment a1 / a2--> (X̄_1, A_1), (X̄_2, A_2)             one graph = one person-frame, as SkeletonMAE
    z_k = g(sum_{v kept} G_E(A_k, X̄_k)_v)                         G_E: the SkeletonMAE encoder, g: projection head
    L = mean_i  -log( exp(s_ii / tau) / sum_{j in N(i)} exp(s_ij / tau) ),   s_ij = cos(z_1,i, z_2,j)   (NT-Xent)

The encoder is the same :class:`~skeletonmae.models.encoder.JointEncoder` as SkeletonMAE's, so fine-tuning
loads a GraphCL / JOAO checkpoint exactly as a SkeletonMAE one.

GraphCL's four augmentations on skeleton frame graphs (each touches ``int(ratio · n)`` of the n present joints,
or of the edges among them, as GraphCL's code counts; absent, all-zero joints are left as they are):

- ``node_drop``: the dropped joints' features are zeroed and their edges removed;
- ``edge_perturb``: k of the E edges among present joints removed and k non-edges added, symmetrically;
- ``subgraph``: a connected subgraph of n - int(ratio · n) present joints, grown from a random start joint by
  adding a random present neighbour of the set at each step (along the skeleton; smaller if the start joint's
  component of present joints is); the others dropped as above;
- ``attr_mask``: the masked joints' embedded features replaced by a learnable [MASK] token, as in SkeletonMAE;
- ``identity``.

Every augmentation is computed for every graph of the batch (vectorised; the subgraph walk loops over at most
V steps) and each graph's own is picked by its index. Pairs (a1, a2) are drawn per graph from a distribution
p over the pool x pool:

- GraphCL ("random" mode): p uniform over the 4 x 4 pairs of real augmentations (no identity), fixed;
- JOAO: p over the 5 x 5 pairs, uniform at first, then once per epoch one projected-gradient-ascent step of
  ``max_p sum_ij p_ij L_ij - (gamma / 2) ||p - uniform||^2`` (step size 1, as JOAO):
  ``p <- Proj_simplex(p + L - gamma (p - uniform))``. L_ij is the mean loss of the anchors that drew pair (i, j)
  during the epoch (JOAO measures it in extra no-grad passes; reusing the training losses costs nothing); a
  pair not drawn in an epoch keeps its last measured loss. The projection is the exact sort-based one
  (Duchi et al., ICML 2008) rather than JOAO's bisection. p is a buffer, saved in and restored from checkpoints.

Choices for skeleton clips:

- Graph unit: a person-frame, as in SkeletonMAE (frames of absent persons are skipped). Frames of one clip
  are nearly identical, so each step samples ``frames_per_clip`` frames per clip, one at a random position in
  each of as many equal segments of the clip, and the frames (and persons) of the anchor's own clip are left
  out of its negatives: N(i) = {i} ∪ {j : clip(j) != clip(i)}. Otherwise near-duplicates would be pushed apart.
- Readout: the *sum* of G_E's output over the joints not dropped (absent joints stay in the graph and the sum,
  as in SkeletonMAE and fine-tuning), GraphCL's global add pooling and the SP of the fine-tuned model
  (models/ssl.py); the projection head is GraphCL's Linear-ReLU-Linear (D -> D -> D).
- Loss: SimCLR's NT-Xent with the anchors in view 1 and the candidates in view 2, as GraphCL's; its
  denominator includes the positive (a cross entropy), where GraphCL's code leaves it out, so the loss is >= 0
  and defined for a batch of one clip. Negatives come from the local batch (no gathering across devices).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ContrastConfig, EncoderConfig
from .encoder import JointEncoder
from .skeletonmae import present_joints

AUGMENTATIONS = ("identity", "node_drop", "edge_perturb", "subgraph", "attr_mask")
METHODS = ("graphcl", "joao")


def random_subset(valid: torch.Tensor, k: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per row, ``k[row]`` of the True entries of ``valid`` [..., M] chosen uniformly (all of them if fewer)."""
    scores = torch.rand(valid.shape, generator=generator, device=valid.device).masked_fill(~valid, 2.0)
    rank = scores.argsort(-1).argsort(-1)
    return (rank < k.unsqueeze(-1)) & valid


def perturb_edges(adjacency: torch.Tensor, present: torch.Tensor, ratio: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip edges among present joints: remove int(ratio · E) of the E edges, add as many non-edges.

    adjacency: [V, V] bool, undirected; present: [B, V] -> [B, V, V] bool, symmetric, no self loops.
    """
    b, v = present.shape
    i, j = torch.triu_indices(v, v, 1, device=present.device)
    pair = present[:, i] & present[:, j]  # [B, V(V-1)/2], both ends present
    edge = adjacency[i, j].expand_as(pair)
    k = ((edge & pair).sum(1) * ratio).long()
    flip = random_subset(edge & pair, k, generator) | random_subset(~edge & pair, k, generator)
    out = torch.zeros(b, v, v, dtype=torch.bool, device=present.device)
    out[:, i, j] = edge ^ flip
    return out | out.transpose(1, 2)


def grow_subgraph(adjacency: torch.Tensor, present: torch.Tensor, size: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """A connected set of ``size[b]`` present joints per graph, grown from a random present joint by adding a
    random present neighbour of the set per step (fewer if the present joints' component is smaller).

    adjacency: [V, V] bool; present: [B, V]; size: [B] -> [B, V] bool.
    """
    inside = random_subset(present, torch.ones_like(size), generator)
    for _ in range(present.shape[1] - 1):
        frontier = (inside.float() @ adjacency.float()).bool() & present & ~inside  # neighbours of the set
        inside = inside | random_subset(frontier, (inside.sum(1) < size).long(), generator)
    return inside


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, groups: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-anchor NT-Xent [B] of views z1, z2 [B, D]: anchor z1_i, positive z2_i, negatives z2_j of other groups.

        l_i = -log( exp(s_ii / t) / sum_{j: j = i or groups[j] != groups[i]} exp(s_ij / t) ),  s_ij = cos(z1_i, z2_j)
    """
    n = len(groups)
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill((groups[:, None] == groups[None, :]) & ~eye, float("-inf"))
    return F.cross_entropy(logits, torch.arange(n, device=logits.device), reduction="none")


def project_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """The Euclidean projection of v (any shape) onto {p >= 0, sum p = 1} (Duchi et al., ICML 2008)."""
    u = v.flatten().sort(descending=True).values
    css = u.cumsum(0) - 1
    k = torch.arange(1, len(u) + 1, dtype=v.dtype, device=v.device)
    rho = (u - css / k > 0).nonzero().max()
    return (v - css[rho] / (rho + 1)).clamp_min(0)


class GraphContrast(nn.Module):
    """GraphCL / JOAO pre-training of the joint encoder G_E (module docstring).

    Args:
        encoder: the joint encoder, as for :class:`SkeletonMAE`.
        contrast: temperature, augmentation ratio, frames per clip and JOAO's gamma.
        in_channels: C of the input.
        method: 'graphcl' (fixed uniform pairs of the 4 augmentations) or 'joao' (learnt pair distribution).
    """

    def __init__(self, encoder: EncoderConfig, contrast: ContrastConfig, in_channels: int, method: str = "graphcl"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.config, self.in_channels, self.method = contrast, in_channels, method
        self.encoder = JointEncoder(encoder, in_channels)  # embedding + G_E, as SkeletonMAE
        self.layout = self.encoder.layout
        d = encoder.dim
        self.mask_token = nn.Parameter(torch.zeros(d))  # attribute masking's token
        nn.init.normal_(self.mask_token, std=0.02)
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))  # GraphCL's projection

        k = len(AUGMENTATIONS)
        pool = torch.ones(k)
        if method == "graphcl":
            pool[AUGMENTATIONS.index("identity")] = 0
        pairs = pool[:, None] * pool[None, :]
        self.register_buffer("skeleton", torch.as_tensor(self.layout.adjacency()).bool(), persistent=False)
        self.register_buffer("pair_prob", pairs / pairs.sum())  # p over (view-1, view-2) augmentations
        self.register_buffer("pair_loss", torch.zeros(k, k))  # L: last measured mean loss per pair
        self.register_buffer("epoch_loss_sum", torch.zeros(k, k), persistent=False)
        self.register_buffer("epoch_count", torch.zeros(k, k), persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """H = G_E(A, X) for every frame: [..., V, C] -> [..., V, D] (as SkeletonMAE.encode)."""
        return self.encoder(x)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        return self.encoder.encoder_state()

    def sample_graphs(self, x: torch.Tensor, generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames_per_clip`` frames per clip, one at a random position in each equal segment of the clip.

        x: [N, P, T, V, C] (or [N, T, V, C]) -> the person-frames that hold a person [B, V, C] and their clip [B].
        """
        clips = x.reshape(x.shape[0], -1, *x.shape[-3:])  # [N, P, T, V, C]
        n, p, t = clips.shape[:3]
        f = min(self.config.frames_per_clip, t)
        offset = torch.rand(n, f, generator=generator, device=x.device)
        frames = ((torch.arange(f, device=x.device) + offset) * (t / f)).long()  # [N, F], segment s: [sT/F, (s+1)T/F)
        s = clips[torch.arange(n, device=x.device)[:, None], :, frames].flatten(0, 2)  # [N·F·P, V, C]
        clip = torch.arange(n, device=x.device).repeat_interleave(f * p)
        keep = present_joints(s).any(-1)
        return s[keep], clip[keep]

    def augment(self, present: torch.Tensor, which: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Graph b gets augmentation ``AUGMENTATIONS[which[b]]``; every one is drawn for every graph, then picked.

        present: [B, V] bool, which: [B]. Returns ``dropped`` [B, V] (joints removed), ``masked`` [B, V] (features
        replaced by the [MASK] token) and the adjacency [B, V, V] bool, in which dropped joints have no edges.
        """
        b, v = present.shape
        count = present.sum(1)
        k = (count * self.config.aug_ratio).long()  # int(ratio · n), as GraphCL
        none = torch.zeros_like(present)
        skeleton = self.skeleton.expand(b, v, v)
        views = [  # (dropped, masked, adjacency) of each augmentation, in the order of AUGMENTATIONS
            (none, none, skeleton),
            (random_subset(present, k, generator), none, skeleton),
            (none, none, perturb_edges(self.skeleton, present, self.config.aug_ratio, generator)),
            (present & ~grow_subgraph(self.skeleton, present, count - k, generator), none, skeleton),
            (none, random_subset(present, k, generator), skeleton),
        ]
        rows = torch.arange(b, device=present.device)
        dropped, masked, adjacency = (torch.stack(parts)[which, rows] for parts in zip(*views, strict=True))
        keep = ~dropped
        return dropped, masked, adjacency & keep[:, :, None] & keep[:, None, :]

    def view(self, s: torch.Tensor, which: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Projected embedding z [B, D] of the augmented graphs: s [B, V, C], augmentation indices ``which`` [B]."""
        dropped, masked, adjacency = self.augment(present_joints(s), which, generator)
        h = self.encoder.embed_joints(s, masked, self.mask_token)  # joint embedding after masking, as SkeletonMAE
        keep = (~dropped).unsqueeze(-1).to(h.dtype)
        h = self.encoder.graph(h * keep, adjacency)
        return self.head((h * keep).sum(1))  # sum over the kept joints, then the projection head

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Sample graphs, draw a pair of augmentations per graph, and score the two views.

        Args:
            x: [N, P, T, V, C] (or [N, T, V, C]) normalised joint coordinates; all-zero persons are absent.
            generator: drives the frame sampling, the pairs and the augmentations.
        Returns a dict with ``loss`` and, per sampled graph, ``losses`` [B], ``pairs`` [B] (index i·K + j of the
        pair (i, j) into the K x K pool) and ``clips`` [B]. In training mode the losses are also recorded per
        pair for :meth:`end_epoch`.
        """
        s, clips = self.sample_graphs(x, generator)
        k = len(AUGMENTATIONS)
        pairs = torch.multinomial(self.pair_prob.flatten(), len(s), replacement=True, generator=generator)
        z1, z2 = self.view(s, pairs // k, generator), self.view(s, pairs % k, generator)
        losses = nt_xent(z1, z2, clips, self.config.temperature)
        if self.training:
            self.epoch_loss_sum.view(-1).index_add_(0, pairs, losses.detach())
            self.epoch_count.view(-1).index_add_(0, pairs, torch.ones_like(losses))
        return {"loss": losses.mean(), "losses": losses, "pairs": pairs, "clips": clips}

    @torch.no_grad()
    def end_epoch(self, reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        """Close an epoch: L_ij <- the epoch's mean loss of each drawn pair; JOAO then steps p (module docstring).

        ``reduce`` sums a tensor over processes (DDP), so that every process computes the same p.
        """
        total, count = reduce(self.epoch_loss_sum.clone()), reduce(self.epoch_count.clone())
        self.pair_loss.copy_(torch.where(count > 0, total / count.clamp_min(1), self.pair_loss))
        self.epoch_loss_sum.zero_()
        self.epoch_count.zero_()
        if self.method == "joao":
            p = self.pair_prob
            p.copy_(project_to_simplex(p + self.pair_loss - self.config.joao_gamma * (p - 1 / p.numel())))
