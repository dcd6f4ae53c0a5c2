"""``skeletonmae data convert arrays``: plain numpy arrays of joints to an annotation pickle and its label map.

The input is either

- a folder of clips, one ``.npy`` / ``.npz`` file each (searched recursively), each [T, V, C] (one person) or
  [M, T, V, C]; a clip is named by its path below the folder without the suffix (``walk/clip01``), or
- one stacked ``.npy`` / ``.npz`` file, [N, T, V, C] or [N, M, T, V, C]; clip i is named ``i`` (``0``, ``1``, ...).

An ``.npz`` file gives its array ``keypoint``, or its only array. C is 2 (x, y in pixels) or 3 (x, y, z); with
``score_channel`` C is 3 and the last channel is a detection score: (x, y, score) as pose estimators write it.
NaN coordinates are missing joints: they become 0 (with score 0). 2D clips need the frame size their pixels
refer to (``img_shape``; (1, 1) for coordinates already in 0..1).

Labels come from a CSV file with a header row and the columns ``clip`` and ``label`` (and optionally ``split``),
or else from the name of the folder each clip file sits in. Class names are numbered 0..K-1 in sorted order
(numerically when every name is a whole number) and written, line i for class i, to ``label_map.txt`` beside
the output. Splits come from the CSV's ``split`` column, or else every class's clips are split at random (seeded)
into ``train`` and ``test`` with ``test_fraction`` of them in ``test``.

The result is checked as ``data check`` checks it (and against ``layout`` when one is given) before it is written.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_open
from ..skeleton import Layout, get_layout
from .annotations import check_annotations, save_annotations
from .fit import fit_problems

SUFFIXES = (".npy", ".npz")


def _read_array(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file, or of a ``.npz`` file (its ``keypoint`` or its only array); no pickles."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded:
            names = loaded.files
            if "keypoint" not in names and len(names) != 1:
                raise DataError(f"{path} holds the arrays {names}; name the joints 'keypoint' or keep one array")
            return loaded["keypoint" if "keypoint" in names else names[0]]
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path} is not a readable .npy/.npz array of numbers ({str(e)[:200]})") from e


def _as_clip(array: np.ndarray, where: str, persons_axis: bool | None) -> np.ndarray:
    """[M, T, V, C] float32 from [T, V, C] or [M, T, V, C] (``persons_axis`` None: by the number of axes)."""
    if not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        raise DataError(f"{where}: expected numbers, got an array of {array.dtype}")
    if array.ndim == 3 and not persons_axis:
        array = array[None]
    if array.ndim != 4:
        raise DataError(f"{where}: expected a clip [T, V, C] or [M, T, V, C], got shape {array.shape}")
    return array.astype(np.float32)


def read_clips(source: str | os.PathLike) -> dict[str, np.ndarray]:
    """Clip name -> [M, T, V, C] float32 array, from a folder of clip files or one stacked file (module docstring)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{source}: no .npy or .npz files in this folder (or below it)")
        return {p.relative_to(source).with_suffix("").as_posix(): _as_clip(_read_array(p), str(p), None)
                for p in files}
    if source.suffix not in SUFFIXES or not source.is_file():
        raise DataError(f"{source}: give a folder of .npy/.npz clip files or one stacked .npy/.npz file")
    stacked = _read_array(source)
    if stacked.ndim not in (4, 5):
        raise DataError(f"{source}: a stacked file holds [N, T, V, C] or [N, M, T, V, C], got shape {stacked.shape}")
    return {str(i): _as_clip(clip, f"{source} clip {i}", stacked.ndim == 5) for i, clip in enumerate(stacked)}


def read_labels_csv(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, str]]:
    """(clip -> class name, clip -> split) from a CSV with the columns ``clip``, ``label`` and optionally
    ``split`` (no split column: the second dict is empty)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read the labels CSV ({e})") from e
    if not rows or not {"clip", "label"} <= set(columns):
        raise DataError(f"{path}: the labels CSV needs a header row with the columns clip,label (and optionally "
                        f"split), then one row per clip; got columns {columns or 'none'}")
    blank = next((i for i, r in enumerate(rows, 2) if not (r["clip"] or "").strip() or not (r["label"] or "").strip()),
                 None)
    if blank is not None:
        raise DataError(f"{path} line {blank}: empty clip or label")
    clips = [r["clip"].strip() for r in rows]
    if len(set(clips)) != len(clips):
        raise DataError(f"{path}: clip '{next(c for c in clips if clips.count(c) > 1)}' is listed twice")
    labels = {r["clip"].strip(): r["label"].strip() for r in rows}
    splits = {r["clip"].strip(): (r.get("split") or "").strip() for r in rows} if "split" in columns else {}
    if splits and not all(splits.values()):
        raise DataError(f"{path}: clip '{next(c for c, s in splits.items() if not s)}' has an empty split")
    return labels, splits


def class_names(labels: list[str]) -> list[str]:
    """The distinct class names in class order: sorted, numerically when every name is a whole number."""
    names = set(labels)
    numeric = all(n.lstrip("-").isdigit() for n in names)
    return sorted(names, key=int) if numeric else sorted(names)


def random_split(names: list[str], labels: list[int], test_fraction: float, seed: int) -> dict[str, list[str]]:
    """``train`` / ``test`` with ``test_fraction`` of each class (rounded) in ``test``, drawn with ``seed``."""
    if not 0 <= test_fraction < 1:
        raise DataError(f"test fraction {test_fraction}: give a share in [0, 1), e.g. 0.2")
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    test = set()
    for k in np.unique(labels_array):
        members = np.flatnonzero(labels_array == k)
        test.update(rng.permutation(members)[: int(round(len(members) * test_fraction))].tolist())
    return {"train": [n for i, n in enumerate(names) if i not in test],
            "test": [n for i, n in enumerate(names) if i in test]}


def _annotation(name: str, clip: np.ndarray, label: int, score_channel: bool, img_shape) -> dict:
    if score_channel:
        if clip.shape[-1] != 3:
            raise DataError(f"clip '{name}' has C = {clip.shape[-1]} channels; with a score channel it needs 3: "
                            "(x, y, score)")
        clip, score = clip[..., :2], clip[..., 2]
    elif clip.shape[-1] not in (2, 3):
        raise DataError(f"clip '{name}' has C = {clip.shape[-1]} channels; expected 2 (x, y) or 3 (x, y, z), or "
                        "(x, y, score) with a score channel (--score)")
    else:
        score = np.ones(clip.shape[:-1], np.float32)
    missing = ~np.isfinite(clip).all(axis=-1) | ~np.isfinite(score)
    keypoint = np.where(missing[..., None], 0, clip).astype(np.float32)
    ann = {"frame_dir": name, "label": label, "total_frames": int(keypoint.shape[1]), "keypoint": keypoint}
    if keypoint.shape[-1] == 2:
        if img_shape is None:
            raise DataError("2D clips need the frame size their pixel coordinates refer to: give --img-shape HEIGHT "
                            "WIDTH (1 1 for coordinates already in 0..1)")
        ann["keypoint_score"] = np.where(missing, 0, score).astype(np.float32)
        ann["img_shape"] = ann["original_shape"] = tuple(int(s) for s in img_shape)
    return ann


def convert_arrays(
    source: str | os.PathLike,
    out: str | os.PathLike,
    labels_csv: str | os.PathLike | None = None,
    layout: str | Layout | None = None,
    score_channel: bool = False,
    img_shape: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Convert plain arrays to an annotation pickle at ``out`` and ``label_map.txt`` beside it (module docstring).

    Returns both paths. Raises DataError, naming the clip, for anything the pickle could not hold."""
    return write_clips(read_clips(source), source, out, labels_csv, layout, score_channel, img_shape, test_fraction,
                       seed)


def write_clips(
    clips: dict[str, np.ndarray],
    source: str | os.PathLike,
    out: str | os.PathLike,
    labels_csv: str | os.PathLike | None,
    layout: str | Layout | None,
    score_channel: bool,
    img_shape: tuple[int, int] | None,
    test_fraction: float,
    seed: int,
) -> tuple[Path, Path]:
    """Clips (name -> [M, T, V, C]) read from ``source`` as an annotation pickle at ``out`` and ``label_map.txt``
    beside it: labels, splits and checks as :func:`convert_arrays` describes."""
    if labels_csv is not None:
        labels, splits = read_labels_csv(labels_csv)
        unlabelled = [n for n in clips if n not in labels]
        unknown = [n for n in labels if n not in clips]
        if unlabelled or unknown:
            raise DataError(f"{labels_csv}: " + (f"no label for clip '{unlabelled[0]}' ({len(unlabelled)} in all)"
                            if unlabelled else f"clip '{unknown[0]}' is not among the arrays ({len(unknown)} in all)")
                            + f"; clips are named {', '.join(list(clips)[:3])}, ... (module docs: data/arrays.py)")
    else:
        labels = {n: n.split("/")[-2] for n in clips if "/" in n}  # the folder the clip file sits in
        if len(labels) != len(clips):
            raise DataError(f"{source}: clip '{next(n for n in clips if n not in labels)}' sits in no class folder; "
                            "put each class's clip files in a folder named after the class, or give --labels CSV")
        splits = {}
    names = class_names(list(labels.values()))
    index = {n: i for i, n in enumerate(names)}
    clip_names = list(clips)
    annotations = [_annotation(n, clips[n], index[labels[n]], score_channel, img_shape) for n in clip_names]
    if splits:
        split: dict[str, list[str]] = {}
        for n in clip_names:
            split.setdefault(splits[n], []).append(n)
    else:
        split = random_split(clip_names, [a["label"] for a in annotations], test_fraction, seed)
    layout = None if layout is None else get_layout(layout)
    data = {"split": split, "annotations": annotations}
    problems = check_annotations(data, out, layout)
    if not problems and layout is not None:
        problems = fit_problems(annotations, layout)
    if problems:
        raise DataError("the arrays do not make a usable annotation file:\n  " + "\n  ".join(problems[:10]))
    path = save_annotations(out, annotations, split)
    label_map = path.parent / "label_map.txt"
    with atomic_open(label_map, "w", [source] + ([labels_csv] if labels_csv else [])) as f:
        f.write("".join(f"{n}\n" for n in names))
    return path, label_map
