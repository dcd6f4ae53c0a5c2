"""Person identity across frames: the person slots of a clip reordered so that a slot follows one person.

Pose estimators fill a frame's person slots in whatever order they find people, so slot 0 may be one person in
one frame and another in the next. :func:`track_persons` links each frame's detections to the tracks of the
frames before by the nearest body centre (the mean of the joints present), greedily, closest pair first. A
detection farther from every open track than ``max_jump`` times its own size starts a new track, as does a
detection when every track is taken, so the output may hold more persons than the input had slots.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError


def present_joints(keypoint: np.ndarray, keypoint_score: np.ndarray | None = None) -> np.ndarray:
    """[M, T, V] bool: the joints an estimator found (not all-zero; score > 0 where scores are given)."""
    seen = np.any(keypoint != 0, axis=-1)
    return seen if keypoint_score is None else seen & (keypoint_score > 0)


def _centres_and_sizes(keypoint: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per person and frame: the centre [M, T, C] of the joints present, the size [M, T] (diagonal of their box)
    and whether anyone is there [M, T]."""
    count = seen.sum(-1)
    found = count > 0
    weights = seen[..., None]
    centre = (keypoint * weights).sum(-2) / np.maximum(count, 1)[..., None]
    big, small = np.where(weights, keypoint, -np.inf).max(-2), np.where(weights, keypoint, np.inf).min(-2)
    size = np.where(found, np.linalg.norm(np.where(found[..., None], big - small, 0), axis=-1), 0)
    return centre, size, found


def track_assignment(keypoint: np.ndarray, keypoint_score: np.ndarray | None = None,
                     max_jump: float = 0.5) -> np.ndarray:
    """[M, T] int: the track each person slot of each frame belongs to (-1 where the slot is empty).

    Args:
        keypoint: [M, T, V, C] joints; absent joints are 0.
        keypoint_score: [M, T, V] scores (2D) or None (3D).
        max_jump: how far, in units of the detection's own size (its box diagonal), a person may move between
            the frame a track was last seen in and the current one and still continue that track.
    """
    if keypoint.ndim != 4:
        raise DataError(f"keypoint must be [M, T, V, C], got shape {list(keypoint.shape)}")
    if not max_jump > 0:
        raise DataError(f"max_jump must be > 0, got {max_jump!r}")
    centre, size, found = _centres_and_sizes(keypoint, present_joints(keypoint, keypoint_score))
    m, t = found.shape
    tracks = np.full((m, t), -1)
    last_centre: list[np.ndarray] = []  # per track: where it was last seen
    for f in range(t):
        slots = np.flatnonzero(found[:, f])
        if not len(slots):
            continue
        free = np.ones(len(last_centre), bool)
        if last_centre:
            dist = np.linalg.norm(centre[slots, f][:, None] - np.stack(last_centre)[None], axis=-1)  # [D, K]
            dist[dist > max_jump * np.maximum(size[slots, f], 1e-6)[:, None]] = np.inf
            for d, k in zip(*np.unravel_index(np.argsort(dist, axis=None), dist.shape), strict=True):
                if np.isfinite(dist[d, k]) and tracks[slots[d], f] < 0 and free[k]:
                    tracks[slots[d], f], free[k] = k, False
        for s in slots[tracks[slots, f] < 0]:  # nobody near: a new person
            tracks[s, f] = len(last_centre)
            last_centre.append(centre[s, f])
        for s in slots:
            last_centre[tracks[s, f]] = centre[s, f]
    return tracks


def track_persons(keypoint: np.ndarray, keypoint_score: np.ndarray | None = None,
                  max_jump: float = 0.5) -> tuple[np.ndarray, np.ndarray | None]:
    """The clip with one person per slot over time: ``keypoint`` [P, T, V, C] and scores [P, T, V] (or None), P the
    number of tracks of :func:`track_assignment`, in order of first appearance; zeros where a person is absent."""
    tracks = track_assignment(keypoint, keypoint_score, max_jump)
    p = max(int(tracks.max()) + 1, 1)
    slot, frame = np.nonzero(tracks >= 0)
    out = np.zeros((p, *keypoint.shape[1:]), keypoint.dtype)
    out[tracks[slot, frame], frame] = keypoint[slot, frame]
    if keypoint_score is None:
        return out, None
    score = np.zeros((p, *keypoint_score.shape[1:]), keypoint_score.dtype)
    score[tracks[slot, frame], frame] = keypoint_score[slot, frame]
    return out, score
