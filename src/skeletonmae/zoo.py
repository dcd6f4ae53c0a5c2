"""Packaged fine-tuned classifiers (the model zoo): made from a fine-tuning run, found by name, listed in a table.

A packaged classifier is a fine-tuning checkpoint cut down to what prediction needs: the model weights (no
optimiser or trainer state), ``hyper_parameters`` (the whole config, so the data settings and the layout
definition; input channels; class count and names) and a ``card`` saying where it came from (dataset, the test
split and its accuracy, the command that trained it, the commit). It loads like any checkpoint
(:func:`skeletonmae.inference.load`, ``skeletonmae predict --model NAME``).

The package's own live in ``src/skeletonmae/classifiers/<name>.pt`` with a model-zoo table (``README.md``, the
sha256 of each file); the environment variable ``SKELETONMAE_CLASSIFIERS`` (folders separated by ``os.pathsep``)
names more folders to look in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import CheckpointError
from .fileio import atomic_open
from .models.build import FORMAT, class_names, load_checkpoint, load_classifier
from .runs import read_run
from .skeleton import get_layout

CLASSIFIERS = Path(__file__).resolve().parent / "classifiers"  # the packaged ones
SEARCH_ENV = "SKELETONMAE_CLASSIFIERS"  # more folders to look in, separated by os.pathsep


def classifier_dirs() -> list[Path]:
    """Where packaged classifiers are looked for: the package's folder, then those ``SKELETONMAE_CLASSIFIERS`` names."""
    return [CLASSIFIERS] + [Path(p) for p in os.environ.get(SEARCH_ENV, "").split(os.pathsep) if p]


def packaged_classifiers(dirs: Sequence[str | Path] | None = None) -> dict[str, Path]:
    """The packaged classifiers in ``dirs`` (default :func:`classifier_dirs`) by name; the first folder wins."""
    found: dict[str, Path] = {}
    for folder in classifier_dirs() if dirs is None else dirs:
        for path in sorted(Path(folder).glob("*.pt")):
            found.setdefault(path.stem, path)
    return found


def classifier_file(source: str | Path, dirs: Sequence[str | Path] | None = None) -> Path:
    """The file ``source`` names: itself when it is a file or a path, else the packaged classifier of that name."""
    path = Path(source)
    if path.is_file() or len(path.parts) > 1 or path.suffix:
        return path
    found = packaged_classifiers(dirs)
    if str(source) in found:
        return found[str(source)]
    where = ", ".join(str(d) for d in (classifier_dirs() if dirs is None else dirs))
    known = ", ".join(found) if found else f"none is installed (looked in {where}; {SEARCH_ENV} adds folders)"
    raise CheckpointError(f"'{source}' is neither a file nor the name of a packaged classifier; packaged: {known}. "
                          "Give one of those names, or the path of a fine-tuning checkpoint "
                          "(RUN/checkpoints/last.ckpt)")


def tested_metrics(run_dir: str | Path) -> dict:
    """The test metrics of a fine-tuning run: its ``metrics.json``, else ``test/metrics.json`` (what
    ``skeletonmae test`` writes)."""
    run_dir = Path(run_dir)
    candidates = [read_run(run_dir).metrics]
    if (run_dir / "test" / "metrics.json").is_file():
        candidates.append(json.loads((run_dir / "test" / "metrics.json").read_text(encoding="utf-8")))
    for metrics in candidates:
        if "top1" in metrics:
            return metrics
    raise CheckpointError(f"{run_dir} has not been tested (its metrics.json holds no test accuracy); test it first: "
                          f"skeletonmae test --checkpoint {run_dir / 'checkpoints' / 'last.ckpt'}")


def package_classifier(run_dir: str | Path, name: str, command: str, commit: str,
                       out_dir: str | Path = CLASSIFIERS) -> Path:
    """Write the classifier of fine-tuning run ``run_dir`` (``checkpoints/last.ckpt``, its test metrics) to
    ``out_dir/<name>.pt`` with its card; ``command`` trained the run at ``commit``."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise CheckpointError(f"classifier name {name!r}: use letters, digits, '_' and '-' only (it names the file "
                              "and is what `skeletonmae predict --model NAME` takes)")
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    model, cfg = load_classifier(ckpt)
    metrics = tested_metrics(run_dir)
    hp = ckpt["hyper_parameters"]
    card = {"name": name, "dataset": Path(cfg.data.path).stem, "layout": get_layout(cfg.data.layout).name,
            "split": metrics.get("split", cfg.data.test_split), "test_samples": metrics.get("num_samples"),
            "clips_per_sample": metrics.get("test_clips", cfg.data.test_clips),
            "top1": metrics["top1"], "mean_class_acc": metrics["mean_class_acc"], "command": command,
            "commit": commit, "run": str(run_dir)}
    packaged = {"hyper_parameters": {"config": cfg.to_dict(), "in_channels": int(hp["in_channels"]),
                                     "num_classes": model.num_classes, "class_names": class_names(ckpt),
                                     "format": FORMAT},
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "card": card}
    path = Path(out_dir) / f"{name}.pt"
    with atomic_open(path, "wb") as f:
        torch.save(packaged, f)
    return path


def read_card(path: str | Path) -> dict:
    """The card of a packaged classifier file."""
    packaged = load_checkpoint(path)
    if "card" not in packaged:
        raise CheckpointError(f"{path} is not a packaged classifier (it holds no card); package a fine-tuning run "
                              "with experiments/package_classifier.py")
    return packaged["card"]


ZOO_HEADER = """# Packaged classifiers

Fine-tuned SkeletonMAE classifiers to use without training: `skeletonmae predict --model NAME INPUT` or
`skeletonmae.inference.load("NAME")`. Each was trained by the command in its row at the commit named there and
packaged by `experiments/package_classifier.py` (weights, config with the layout, class names and its card; no
optimiser state). Accuracy is on the dataset's test split (top-1 / mean class accuracy, samples tested). The full
card is stored in the file (`skeletonmae.zoo.read_card(path)`). Cite the dataset when you use a classifier.

| name | data | layout | accuracy | command | size | sha256 |
|---|---|---|---|---|---|---|
"""


def zoo_row(path: Path) -> str:
    """The model-zoo table row of a packaged classifier file."""
    c = read_card(path)
    accuracy = (f"{c['split']}: {100 * c['top1']:.1f} % / {100 * c['mean_class_acc']:.1f} % "
                f"({c['test_samples']} samples)")
    return (f"| `{path.stem}` | {c['dataset']} | {c['layout']} | {accuracy} | `{c['command']}` at `{c['commit']}` | "
            f"{path.stat().st_size / 1024:.0f} kB | `{hashlib.sha256(path.read_bytes()).hexdigest()}` |")


def write_zoo_table(folder: str | Path = CLASSIFIERS) -> Path:
    """Write ``folder/README.md``: the model-zoo table of the classifiers packaged in ``folder``."""
    folder = Path(folder)
    rows = [zoo_row(path) for path in packaged_classifiers([folder]).values()]
    with atomic_open(folder / "README.md", "w") as f:
        f.write(ZOO_HEADER + "\n".join(rows) + "\n")
    return folder / "README.md"
