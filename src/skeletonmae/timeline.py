"""What each person does when: a clip cut into sliding windows, each window classified per tracked person.

    from skeletonmae.timeline import classify_windows
    rows = classify_windows(predictor, clip, window=90, stride=45, fps=30)
    rows[0]  # {'person': 0, 'start_frame': 0, 'end_frame': 90, 'start_s': 0.0, 'end_s': 3.0, 'top': [...]}

Persons are first tracked (:mod:`skeletonmae.tracking`), so ``person`` names the same body in every window.
Windows start every ``stride`` frames; a last one ends with the clip, so its tail is covered too, and a clip
no longer than ``window`` is a single window. ``end_frame`` is exclusive. A person seen in less than
``min_presence`` of a window's frames is not classified in that window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ConfigError, DataError
from .tracking import present_joints, track_persons

Progress = Callable[[int, int], None]


def window_spans(total_frames: int, window: int, stride: int) -> np.ndarray:
    """[N, 2] int: (start, end) of the windows over ``total_frames`` frames, ``end`` exclusive."""
    for name, value in (("total_frames", total_frames), ("window", window), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    if total_frames <= window:
        return np.array([[0, total_frames]])
    starts = np.arange(0, total_frames - window + 1, stride)
    if starts[-1] + window < total_frames:
        starts = np.append(starts, total_frames - window)
    return np.stack([starts, starts + window], axis=1)


def classify_windows(predictor, clip: dict, window: int, stride: int, fps: float | None = None,
                     layout: str | None = None, top_k: int = 3, min_presence: float = 0.5,
                     progress: Progress | None = None, batch: int = 64) -> list[dict]:
    """The timeline of one annotation dict: a row per window and person seen in it, in order of person, then time.

    Args:
        predictor: a :class:`skeletonmae.inference.Predictor`.
        clip: a PYSKL annotation dict (``keypoint`` [M, T, V, C], 2D ones with scores and ``img_shape``).
        window, stride: window length and step, in frames.
        fps: frames per second, for ``start_s`` / ``end_s`` (None: the rows give frames only).
        layout: the clip's joint layout (default the model's).
        top_k: classes per row.
        min_presence: the share of a window's frames a person must be seen in to be classified there.
        progress: called as ``progress(windows_done, windows_total)`` after each batch.
        batch: windows classified at once.
    """
    if not 0 < min_presence <= 1:
        raise ConfigError(f"min_presence must be in (0, 1], got {min_presence!r}")
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps!r}")
    keypoint = np.asarray(clip["keypoint"])
    persons, scores = track_persons(keypoint, clip.get("keypoint_score"))
    spans = window_spans(keypoint.shape[1], window, stride)
    seen = present_joints(persons, scores).any(-1)  # [P, T]
    frames_seen = np.concatenate([np.zeros((len(seen), 1), int), np.cumsum(seen, axis=1)], axis=1)
    share = (frames_seen[:, spans[:, 1]] - frames_seen[:, spans[:, 0]]) / (spans[:, 1] - spans[:, 0])  # [P, N]
    person, index = np.nonzero(share >= min_presence)
    if not len(person):
        raise DataError(f"{clip.get('frame_dir', 'the clip')}: no person is seen in {min_presence:.0%} of the frames "
                        f"of any {window}-frame window; nothing to classify")
    samples = []
    for p, (start, end) in zip(person, spans[index], strict=True):
        sample = {"frame_dir": f"person {p}, frames {start}-{end}", "label": -1, "total_frames": int(end - start),
                  "keypoint": persons[p:p + 1, start:end]}
        if scores is not None:
            sample["keypoint_score"] = scores[p:p + 1, start:end]
        if "img_shape" in clip:
            sample["img_shape"] = clip["img_shape"]
        samples.append(sample)
    results = []
    for first in range(0, len(samples), batch):
        results += predictor.predict_samples(samples[first:first + batch], layout=layout, top_k=top_k)
        if progress is not None:
            progress(len(results), len(samples))
    rows = []
    for p, (start, end), r in zip(person, spans[index], results, strict=True):
        row = {"person": int(p), "start_frame": int(start), "end_frame": int(end)}
        if fps is not None:
            row |= {"start_s": round(start / fps, 3), "end_s": round(end / fps, 3)}
        rows.append(row | {"top": r["top"]})
    return rows
