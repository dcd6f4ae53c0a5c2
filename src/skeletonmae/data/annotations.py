"""PYSKL / MMAction2 annotation pickles: safe loading, validation, writing.

The format (the paper's pre-processing, §4.1, follows PYSKL): a dict
``{'split': {name: [frame_dir, ...]}, 'annotations': [ann, ...]}`` where each ``ann`` holds

- ``frame_dir`` (str), ``label`` (int, 0-based), ``total_frames`` (int T),
- ``keypoint`` float [M, T, V, C] (C = 2 pixels for 2D, C = 3 for 3D),
- ``keypoint_score`` float [M, T, V] (2D; absent for 3D),
- ``img_shape`` / ``original_shape`` (height, width) for 2D.

Loading never executes code from the file: :mod:`~skeletonmae.data.safe_pickle` reads numpy arrays and plain
containers only. Every problem found names the file, the sample (``frame_dir``), the key and what was
expected, so a user can fix the file.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_open
from ..skeleton import Layout, get_layout
from .safe_pickle import UnsafePickleError, load_pickle


def safe_load(path: str | os.PathLike) -> object:
    """Read ``path`` with :func:`~skeletonmae.data.safe_pickle.load_pickle` (plain data and numpy arrays, no
    code); any failure becomes a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Check the path (data.path in the config).")
    try:
        return load_pickle(path)
    except UnsafePickleError as e:
        raise DataError(f"{path}: not loaded: {e}. Re-save the file with plain dicts and numpy arrays.") from e
    except (ValueError, EOFError, OverflowError, MemoryError) as e:
        raise DataError(
            f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:200]}); the file is truncated or "
            "corrupt. Re-create or re-download it."
        ) from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from e


@dataclass
class AnnotationFile:
    """A loaded annotation pickle: its splits and its samples, plus where it came from."""

    path: Path | None
    split: dict[str, list[str]]
    annotations: list[dict]
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {str(a["frame_dir"]): i for i, a in enumerate(self.annotations)}

    @property
    def num_channels(self) -> int:
        return int(self.annotations[0]["keypoint"].shape[-1])

    @property
    def num_classes(self) -> int:
        return 1 + max(int(a["label"]) for a in self.annotations)

    def samples(self, split: str | None) -> list[dict]:
        """The samples of ``split`` (all samples for None), in the split's order."""
        if split is None:
            return list(self.annotations)
        if split not in self.split:
            raise DataError(
                f"{self.path}: unknown split '{split}'; the file has {sorted(self.split)}. "
                "Set data.train_split / data.test_split to one of them."
            )
        missing = [name for name in self.split[split] if name not in self._index]
        if missing:
            raise DataError(
                f"{self.path}: split '{split}' names {len(missing)} sample(s) that are not in "
                f"'annotations', e.g. frame_dir '{missing[0]}'."
            )
        return [self.annotations[self._index[name]] for name in self.split[split]]


def _where(path, ann, index) -> str:
    name = ann.get("frame_dir", f"#{index}") if isinstance(ann, dict) else f"#{index}"
    return f"{path}: sample '{name}'"


MAX_CLASSES = 100_000  # labels are class indices; a larger one is a corrupt value, not a class


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_sample(
    ann: object,
    index: int,
    path: Path | str | None,
    layout: Layout | None,
    num_classes: int | None,
    labelled: bool = True,
) -> list[str]:
    """Every problem of one annotation, each a sentence naming the file, the sample and the key.

    ``labelled=False`` (data to classify) also accepts label -1, "no label"."""
    where = _where(path, ann, index)
    if not isinstance(ann, dict):
        return [f"{where}: expected a dict, got {type(ann).__name__}"]
    problems = []
    for key in ("frame_dir", "label", "keypoint"):
        if key not in ann:
            problems.append(f"{where}: missing key '{key}'")
    if problems:
        return problems
    if not isinstance(ann["frame_dir"], str):
        problems.append(f"{where}: 'frame_dir' must be a str, got {type(ann['frame_dir']).__name__}")
    label = ann["label"]
    top = min(MAX_CLASSES, num_classes) if num_classes is not None else MAX_CLASSES
    if not isinstance(label, (int, np.integer)) or isinstance(label, (bool, np.bool_)):
        problems.append(f"{where}: 'label' must be an int class index, got a {type(label).__name__}")
    elif not (0 if labelled else -1) <= label < top:
        unlabelled = "" if labelled else " (or -1 for no label)"
        problems.append(f"{where}: 'label' {label} is out of range 0..{top - 1}{unlabelled}")
    kp = ann["keypoint"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        shape = getattr(kp, "shape", type(kp).__name__)
        return problems + [f"{where}: 'keypoint' must be a float array [M, T, V, C], got {shape}"]
    if not np.issubdtype(kp.dtype, np.floating):
        return problems + [f"{where}: 'keypoint' must be float, got dtype {kp.dtype}"]
    m, t, v, c = kp.shape
    if m == 0 or t == 0:
        problems.append(f"{where}: empty clip, 'keypoint' has shape {kp.shape} (M and T must be >= 1)")
    if c not in (2, 3):
        problems.append(f"{where}: 'keypoint' has C = {c} channels; expected 2 (x, y) or 3 (x, y, z)")
    if layout is not None and v != layout.num_joints:
        problems.append(
            f"{where}: 'keypoint' has V = {v} joints but layout '{layout.name}' has "
            f"{layout.num_joints}; pass the layout the file was recorded in (data.layout)"
        )
    finite = np.isfinite(kp)
    if not finite.all():
        problems.append(f"{where}: 'keypoint' holds {int((~finite).sum())} NaN/inf value(s); replace them (e.g. by 0 "
                        "with score 0)")
    seen = np.any(kp != 0, axis=-1)
    if "keypoint_score" in ann:
        sc = ann["keypoint_score"]
        if not isinstance(sc, np.ndarray) or sc.shape != kp.shape[:3] or not np.issubdtype(sc.dtype, np.floating):
            problems.append(
                f"{where}: 'keypoint_score' must be a float array of shape {kp.shape[:3]} (M, T, V), got "
                f"{getattr(sc, 'shape', type(sc).__name__)}{' of ' + str(sc.dtype) if hasattr(sc, 'dtype') else ''}"
            )
        elif not np.isfinite(sc).all():
            problems.append(f"{where}: 'keypoint_score' holds NaN/inf value(s)")
        else:
            seen &= sc > 0
    if kp.size and not seen.any():
        problems.append(f"{where}: no joint is present in any frame (every keypoint is 0 or every score <= 0); "
                        "drop the clip")
    total = ann.get("total_frames")
    if total is not None and not (isinstance(total, (int, np.integer)) and total == t):
        problems.append(f"{where}: 'total_frames' is {repr(total)[:40]} but 'keypoint' has T = {t} frames")
    if "img_shape" in ann:
        shape = ann["img_shape"]
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2 and all(_number(s) and 0 < s < 1e6
                                                                              for s in shape)):
            problems.append(f"{where}: 'img_shape' must be (height, width), two numbers > 0, got "
                            f"{str(shape)[:60]}")
    elif c == 2:
        problems.append(f"{where}: 2D sample has no 'img_shape' (height, width) to normalise by")
    return problems


def check_annotations(
    data: object,
    path: Path | str | None = None,
    layout: str | Layout | None = None,
    num_classes: int | None = None,
    labelled: bool = True,
) -> list[str]:
    """All problems of a loaded annotation dict (empty list: usable); ``labelled=False`` accepts label -1."""
    if not isinstance(data, dict) or "annotations" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        return [f"{path}: expected a dict with keys 'split' and 'annotations', got {keys}"]
    anns = data["annotations"]
    if not isinstance(anns, list) or not anns:
        return [f"{path}: 'annotations' must be a non-empty list"]
    layout = None if layout is None else get_layout(layout)
    problems = []
    for i, ann in enumerate(anns):
        problems += check_sample(ann, i, path, layout, num_classes, labelled)
    names = [a.get("frame_dir") for a in anns if isinstance(a, dict)]
    if len(set(names)) != len(names):
        problems.append(f"{path}: 'frame_dir' values are not unique")
    split = data.get("split", {})
    if not isinstance(split, dict) or not all(isinstance(k, str) and isinstance(v, list)
                                              and all(isinstance(n, str) for n in v) for k, v in split.items()):
        problems.append(f"{path}: 'split' must map split names to lists of frame_dir strings")
    channels = {a["keypoint"].shape[-1] for a in anns
                if isinstance(a, dict) and isinstance(a.get("keypoint"), np.ndarray) and a["keypoint"].ndim}
    if len(channels) > 1:
        problems.append(f"{path}: samples mix C = {sorted(channels)} channels; use one kind (2D or 3D) a file")
    return problems


def load_annotations(
    path: str | os.PathLike,
    layout: str | Layout | None = None,
    num_classes: int | None = None,
    labelled: bool = True,
) -> AnnotationFile:
    """Load and validate an annotation pickle. Raises DataError listing the first problems found.

    ``labelled=False`` (clips to classify) accepts label -1, "no label"."""
    path = Path(path)
    data = safe_load(path)
    problems = check_annotations(data, path, layout, num_classes, labelled)
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(
            f"{path}: {len(problems)} problem(s) found:\n  " + "\n  ".join(problems[:10]) + more +
            "\nRun `skeletonmae data check FILE` for a full report."
        )
    return AnnotationFile(path=path, split=dict(data.get("split", {})), annotations=data["annotations"])


def save_annotations(path: str | os.PathLike, annotations: list[dict], split: dict[str, list[str]]) -> Path:
    """Write an annotation pickle (protocol 4) atomically: a temporary file, then a rename."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f, protocol=4)
    return path


def read_label_map(path: str | os.PathLike, num_classes: int | None = None) -> list[str] | None:
    """Class names from a ``label_map.txt`` (line i names label i; blank lines and ``#`` comments skipped), or None
    without such a file. With ``num_classes``: too few names, one name too many (a header line shifts every name
    by one) or a name given twice is a DataError."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{path} names '{twice}' twice; line i must name class i, once each")
    if num_classes is not None:
        if len(names) < num_classes:
            raise DataError(f"{path} has {len(names)} names for the {num_classes} classes of the data (labels 0.."
                            f"{num_classes - 1}); give one name per class, line i for label i")
        if len(names) == num_classes + 1:
            raise DataError(f"{path} has {len(names)} names for {num_classes} classes: if its first line "
                            f"('{names[0]}') is a header, remove it, since line i names label i")
    return names
