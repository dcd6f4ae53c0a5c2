"""Joint masking for SkeletonMAE pre-training (paper §3.1.2, Tab. 4c, Tab. 5b).

Body-region masking draws one or more of the six regions V_0..V_5 (head, torso, left arm, right arm,
left leg, right leg) and masks all their joints; never all six (§3.1.2: "it is not feasible to mask all
joint sets"). The regions are either fixed (Tab. 4c masks one given part; Tab. 5b masks given sets) or
drawn at random, k in [k_min, k_max] per clip. Random-joint masking (the MAE baseline of Tab. 5b) masks
``round(ratio * V)`` joints chosen uniformly.

A mask is drawn per clip and shared by all its frames (default), or drawn per frame. Masks are bool
tensors [n, T, V] (True = masked), made without Python loops over clips, frames or joints.
"""

from __future__ import annotations

import torch

from ..config import MAEConfig
from ..skeleton import Layout, get_layout


class JointMasker:
    """Draws joint masks for a batch of clips.

    Args:
        layout: the skeleton layout (gives V and the six regions).
        mode: ``'regions'`` (body-region masking) or ``'joints'`` (random joints).
        regions: fixed region ids to mask (mode 'regions'); None draws k random regions per mask.
        num_regions: (k_min, k_max) for random regions, 1 <= k_min <= k_max <= 5.
        ratio: share of joints masked in mode 'joints'.
        per_frame: draw a new mask for every frame instead of one per clip.
    """

    def __init__(
        self,
        layout: str | Layout,
        mode: str = "regions",
        regions: list[int] | None = None,
        num_regions: tuple[int, int] | list[int] = (1, 2),
        ratio: float = 0.5,
        per_frame: bool = False,
    ):
        layout = get_layout(layout)
        if mode not in ("regions", "joints"):
            raise ValueError(f"mode must be 'regions' or 'joints', got {mode!r}")
        self.mode, self.per_frame = mode, per_frame
        self.num_joints = layout.num_joints
        self.region_of_joint = torch.as_tensor(layout.region_of_joint())
        self.fixed = None
        if regions is not None:
            fixed = torch.zeros(len(layout.regions), dtype=torch.bool)
            fixed[list(regions)] = True
            self.fixed = fixed[self.region_of_joint]  # [V]
        self.k_min, self.k_max = int(num_regions[0]), int(num_regions[1])
        self.num_masked_joints = max(1, round(ratio * self.num_joints))

    @classmethod
    def from_config(cls, layout: str | Layout, mae: MAEConfig) -> JointMasker:
        """The masker the ``mae`` section describes."""
        return cls(layout, mode=mae.mask, regions=mae.mask_regions, num_regions=mae.mask_num_regions,
                   ratio=mae.mask_ratio, per_frame=mae.mask_per_frame)

    def __call__(self, num_clips: int, num_frames: int, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """A bool mask [num_clips, num_frames, V], drawn from ``generator`` (default: torch's global one)."""
        n = num_clips * num_frames if self.per_frame else num_clips
        v = self.num_joints
        if self.mode == "joints":
            rank = torch.rand(n, v, device=device, generator=generator).argsort(dim=1).argsort(dim=1)
            mask = rank < self.num_masked_joints
        elif self.fixed is not None:
            mask = self.fixed.to(device).expand(n, v)
        else:
            r = len(self.region_of_joint.unique())
            rank = torch.rand(n, r, device=device, generator=generator).argsort(dim=1).argsort(dim=1)
            k = torch.randint(self.k_min, self.k_max + 1, (n, 1), device=device, generator=generator)
            mask = (rank < k)[:, self.region_of_joint.to(device)]
        if self.per_frame:
            return mask.reshape(num_clips, num_frames, v)
        return mask[:, None, :].expand(num_clips, num_frames, v)
