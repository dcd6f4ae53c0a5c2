"""Do the data fit a layout? Joints in another order than the layout's pass every format check and train into
nonsense; ``data check --layout X`` runs this test.

Measured on the first person of up to :data:`MAX_CLIPS` clips spread over the file, each clip's body size being
the median distance between two of its joints (over frames where both are present):

- bones join nearby joints: the median bone, as a share of the body size, is at most :data:`MAX_BONE_LENGTH`
  (the real sets here: 0.31-0.52; the same sets with their joints shuffled: 0.88-1.5), and no single bone is
  longer than :data:`MAX_ONE_BONE` body sizes (their longest bone: 0.92; with the head and a hip swapped 1.1-2.1);
- 3D only: bones keep their length: the median bone's standard deviation over time is at most
  :data:`MAX_BONE_STRETCH` body sizes (the real 3D sets: 0.01-0.05; shuffled: 0.02-0.16). A 2D bone shortens when
  it turns away from the camera (Penn Action's baseball clips: 0.14), so 2D data are not held to it;
- 2D only: the head is above the hips (image y grows downward) in at least :data:`MIN_UPRIGHT` of the frames
  (real sets: 87-99 %). 3D data have no known up axis, and are not tested so.

When the data do not fit, the other known layouts with as many joints are measured too and the best-fitting
one is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import LAYOUTS, Layout

MAX_CLIPS = 200
MAX_BONE_LENGTH = 0.7
MAX_ONE_BONE = 1.2
MAX_BONE_STRETCH = 0.1
MIN_UPRIGHT = 0.5
HEADS = ("head", "nose", "face")
HIPS = (("left_hip", "right_hip"), ("hip_center",), ("spine_base",))


@dataclass(frozen=True)
class Fit:
    """How well clips fit a layout (module docstring): the measures, and the sentences of what does not fit."""

    layout: Layout
    is_3d: bool
    bone_length: float
    bone_stretch: float
    long_bones: tuple[str, ...]
    upright: float | None

    def problems(self) -> list[str]:
        name = self.layout.name
        out = []
        if self.bone_length > MAX_BONE_LENGTH:
            out.append(f"the bones of layout {name} join distant joints (median bone {self.bone_length:.2f} body "
                       f"sizes, at most {MAX_BONE_LENGTH} when joints are in the layout's order)")
        elif self.long_bones:
            out.append(f"bone(s) {', '.join(self.long_bones)} join distant joints (longer than {MAX_ONE_BONE} body "
                       "sizes): those joints are probably in other places of the data")
        if self.is_3d and self.bone_stretch > MAX_BONE_STRETCH:
            out.append(f"the bones of layout {name} change length over time (median bone varies by "
                       f"{self.bone_stretch:.2f} body sizes, at most {MAX_BONE_STRETCH})")
        if self.upright is not None and self.upright < MIN_UPRIGHT:
            out.append(f"the head of layout {name} is above its hips in only {self.upright:.0%} of the frames "
                       "(image y grows downward)")
        return out


def _joint_groups(layout: Layout) -> tuple[int, list[int]] | None:
    """(head joint, hip joints) found by name, or None."""
    index = {n: i for i, n in enumerate(layout.joints)}
    head = next((index[n] for n in HEADS if n in index), None)
    hips = next(([index[n] for n in group] for group in HIPS if all(n in index for n in group)), None)
    return None if head is None or hips is None else (head, hips)


def _clip_measures(kp: np.ndarray, ok: np.ndarray, bones: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each bone's mean length and its standard deviation over time, in body sizes, for one person's [T, V, C]
    joints (``ok`` [T, V]: present); None when no two joints are ever seen together."""
    d = np.linalg.norm(kp[:, :, None] - kp[:, None], axis=-1)  # [T, V, V]
    both = ok[:, :, None] & ok[:, None]
    n = both.sum(0)
    if not n.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (d * both).sum(0) / n
        sd = np.sqrt((((d - mean) ** 2) * both).sum(0) / n)
    body = np.nanmedian(mean[np.triu_indices(len(mean), 1)])
    if not body > 0:
        return None
    i, j = bones.T
    return mean[i, j] / body, sd[i, j] / body


def measure_fit(annotations: list[dict], layout: Layout, score_threshold: float = 0.01) -> Fit:
    """How well the first person of (up to :data:`MAX_CLIPS`) ``annotations`` fits ``layout``."""
    bones = np.asarray(layout.bones).reshape(-1, 2)
    groups = _joint_groups(layout)
    lengths, stretches, upright = [], [], []
    for ann in annotations[:: max(1, len(annotations) // MAX_CLIPS)]:
        kp = ann["keypoint"][0].astype(np.float64)
        ok = np.any(kp != 0, axis=-1)
        if isinstance(ann.get("keypoint_score"), np.ndarray):
            ok &= ann["keypoint_score"][0] > score_threshold
        measures = _clip_measures(kp, ok, bones)
        if measures is not None:
            lengths.append(measures[0])
            stretches.append(measures[1])
        if groups is not None and kp.shape[-1] == 2:
            head, hips = groups
            seen = ok[:, head] & ok[:, hips].all(axis=1)
            upright.append(kp[seen, head, 1] < kp[seen][:, hips, 1].mean(axis=1))
    length = np.nanmedian(np.stack(lengths), axis=0) if lengths else np.full(len(bones), np.nan)
    stretch = np.nanmedian(np.stack(stretches), axis=0) if stretches else np.full(len(bones), np.nan)
    frames = np.concatenate(upright) if upright else np.zeros(0, bool)
    long_bones = tuple(f"{layout.joints[i]}-{layout.joints[j]}" for (i, j), x in zip(bones, length, strict=True)
                       if x > MAX_ONE_BONE)
    return Fit(layout, annotations[0]["keypoint"].shape[-1] == 3, float(np.nanmedian(length)),
               float(np.nanmedian(stretch)), long_bones, float(frames.mean()) if len(frames) else None)


def fit_problems(annotations: list[dict], layout: Layout) -> list[str]:
    """What in ``annotations`` does not fit ``layout`` (empty: they fit), naming the known layout with as many
    joints that fits best when another one does."""
    fit = measure_fit(annotations, layout)
    problems = fit.problems()
    if not problems:
        return []
    others = {id(x): x for x in LAYOUTS.values() if x.num_joints == layout.num_joints and x.name != layout.name}
    fits = sorted((measure_fit(annotations, x) for x in others.values()), key=lambda f: f.bone_length)
    best = next((f for f in fits if not f.problems()), None)
    if best is not None:
        hint = f"the data fit layout {best.layout.name} (median bone {best.bone_length:.2f} body sizes): pass it"
    else:
        hint = (f"no known layout with V = {layout.num_joints} joints fits either: the joints are in an order of "
                "their own; describe it in a layout file (`skeletonmae data layout " + layout.name + "` prints one "
                "to edit)")
    return [f"the data do not fit layout {layout.name}: " + "; ".join(problems) + f". {hint}"]
