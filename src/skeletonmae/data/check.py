"""``skeletonmae data check``: validate an annotation pickle and summarise it for a person.

Custom data and format confusion are the most common complaints about skeleton pipelines; this report
says what the file holds (clips per split, classes, frames, persons, coordinate ranges, low-score share)
and every problem found, each naming the sample and the key; with a layout, whether the joints fit it
(:mod:`.fit`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..skeleton import LAYOUTS, Layout, get_layout
from .annotations import check_annotations, safe_load
from .fit import fit_problems


def _guess_layouts(num_joints: int) -> list[str]:
    return sorted({layout.name for layout in LAYOUTS.values() if layout.num_joints == num_joints})


def _group(problems: list[str]) -> list[tuple[str, int]]:
    """Problems that differ only in the sample named, as (first occurrence, count), in order of appearance."""
    groups: dict[str, list] = {}
    for p in problems:
        key = re.sub(r"sample '[^']*'", "sample", p)
        groups.setdefault(key, [p, 0])[1] += 1
    return [(first, count) for first, count in groups.values()]


def _digest(ann: dict) -> tuple:
    """Identity of a clip's keypoints: shape, dtype and a BLAKE2 hash of the bytes (small, unlike the bytes)."""
    kp = np.ascontiguousarray(ann["keypoint"])
    return kp.shape, kp.dtype.str, hashlib.blake2b(kp.data, digest_size=16).digest()


def duplicated_clips(reference: list[dict], samples: list[dict]) -> list[str]:
    """``frame_dir`` of every clip in ``samples`` whose keypoints are bit-identical to a clip of ``reference``
    (e.g. test clips copied from the training split)."""
    seen = {_digest(a) for a in reference}
    return [str(a["frame_dir"]) for a in samples if _digest(a) in seen]


def renamed_copies(annotations: list[dict]) -> list[tuple[str, str]]:
    """(copy, original) for every clip whose keypoints are bit-identical to an earlier clip of another name."""
    first: dict[tuple, str] = {}
    copies = []
    for a in annotations:
        original = first.setdefault(_digest(a), str(a["frame_dir"]))
        if original != str(a["frame_dir"]):
            copies.append((str(a["frame_dir"]), original))
    return copies


def check_file(path: str | Path, layout: str | Layout | None = None, num_classes: int | None = None
               ) -> tuple[str, bool]:
    """The report text and whether the file is usable (with ``layout``: and its joints fit that layout)."""
    path = Path(path)
    try:
        data = safe_load(path)
    except DataError as e:
        return f"PROBLEM: {e}", False
    layout = None if layout is None else get_layout(layout)
    problems = check_annotations(data, path, layout, num_classes)
    lines = [f"file: {path}"]
    anns = data.get("annotations") if isinstance(data, dict) else None
    good = [a for a in anns or [] if isinstance(a, dict) and isinstance(a.get("keypoint"), np.ndarray)
            and a["keypoint"].ndim == 4 and a["keypoint"].size]
    fitting = [a for a in good if layout is not None and a["keypoint"].shape[2] == layout.num_joints
               and np.issubdtype(a["keypoint"].dtype, np.floating) and np.isfinite(a["keypoint"]).all()
               and getattr(a.get("keypoint_score"), "shape", a["keypoint"].shape[:3]) == a["keypoint"].shape[:3]]
    if fitting:
        problems += [f"{path}: {p}" for p in fit_problems(fitting, layout)]
    if good:
        kp0 = good[0]["keypoint"]
        v, c = kp0.shape[2], kp0.shape[3]
        frames = np.array([a["keypoint"].shape[1] for a in good])
        persons = np.array([a["keypoint"].shape[0] for a in good])
        labels = np.array([a.get("label", -1) for a in good if isinstance(a.get("label"), (int, np.integer))])
        kind = "3D (x, y, z)" if c == 3 else "2D (x, y) + keypoint_score" if c == 2 else f"C = {c}"
        lines += [
            f"clips: {len(anns)}    kind: {kind}    joints V = {v}"
            + (f" (layout {layout.name})" if layout else f" (layouts with V = {v}: "
               f"{', '.join(_guess_layouts(v)) or 'none known'}; pass --layout to check against one)"),
            f"classes: {len(np.unique(labels))} (labels {labels.min()}..{labels.max()})" if len(labels) else
            "classes: none readable",
            f"frames per clip: min {frames.min()}, median {int(np.median(frames))}, max {frames.max()}",
            f"persons per clip: min {persons.min()}, max {persons.max()}"
            f" ({(persons > 1).mean():.0%} of clips have more than one)",
        ]
        sample = np.concatenate([a["keypoint"].reshape(-1, c) for a in good[:: max(1, len(good) // 500)]])
        finite = sample[np.isfinite(sample).all(1)]
        if len(finite):
            ranges = ", ".join(f"{n} {lo:.3g}..{hi:.3g}" for n, lo, hi in
                               zip("xyz", np.percentile(finite, 1, 0), np.percentile(finite, 99, 0), strict=False))
            lines.append(f"coordinates (1st-99th percentile): {ranges}")
        scored = [a["keypoint_score"] for a in good if isinstance(a.get("keypoint_score"), np.ndarray)]
        if scored:
            low = np.mean(np.concatenate([s.ravel() for s in scored]) < 0.1)
            lines.append(f"joints with score < 0.1: {low:.1%}")
        split = data.get("split", {}) if isinstance(data, dict) else {}
        if isinstance(split, dict):
            for name, members in split.items():
                lines.append(f"split '{name}': {len(members)} clips")
        copies = renamed_copies(good)
        if copies:
            lines.append(f"note: {len(copies)} clips are bit-identical copies of another clip, e.g. "
                         f"'{copies[0][0]}' = '{copies[0][1]}' (if they sit in different splits, test accuracy "
                         "counts memorised clips)")
    if problems:
        groups = _group(problems)
        lines.append(f"PROBLEMS ({len(problems)}, {len(groups)} kinds):")
        for first, count in groups[:50]:
            more = f"  (and {count - 1} more samples with the same problem)" if count > 1 else ""
            lines.append(f"  - {first}{more}")
        if len(groups) > 50:
            lines.append(f"  ... and {len(groups) - 50} more kinds")
        lines.append("result: NOT usable; fix the problems above")
    else:
        lines.append("result: OK, usable")
    return "\n".join(lines), not problems
