"""Run directories, read back: what each run was, how far it got and what it scored (``skeletonmae runs``).

A run directory (``trainer.out_dir``) holds ``config.yaml`` (the whole config), ``run.json`` (the stage, the
``--config`` files it was made from, the pre-trained encoder a fine-tuning started from, the version; written
when the run starts), ``logs/metrics.csv`` (one row per logged step and epoch) and, after fine-tuning,
``metrics.json``. Runs made before ``run.json`` existed are read from the other files.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import __version__
from .config import Config, keys
from .errors import ConfigError, SkeletonMAEError
from .fileio import atomic_open

RUN_INFO = "run.json"


def write_run_info(out_dir: str | Path, stage: str, configs: list[str], pretrained: str | None = None) -> None:
    """Record how a run starts in ``out_dir/run.json``; a resumed run keeps the record of its start."""
    path = Path(out_dir) / RUN_INFO
    if path.exists():
        return
    info = {"stage": stage, "configs": [str(c) for c in configs], "version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if stage == "finetune":
        info["pretrained"] = pretrained
    with atomic_open(path, "w") as f:
        json.dump(info, f, indent=1)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SkeletonMAEError(f"{path} is not valid JSON ({e}); the run directory is damaged") from e
    return values if isinstance(values, dict) else {}


@dataclass
class Run:
    """What one run directory says about its run."""

    path: Path
    config: Config
    info: dict  # run.json ({} for runs made before it existed)
    metrics: dict  # metrics.json ({} before testing, and for pre-training)
    epochs_done: int

    @property
    def stage(self) -> str:
        """'pretrain' or 'finetune' ('?' for a run of an earlier version that has not been tested)."""
        return self.info.get("stage") or ("finetune" if self.metrics else "?")

    @property
    def epochs(self) -> int | None:
        """The epochs the run was set to train (None when the stage is unknown)."""
        return {"pretrain": self.config.pretrain.epochs, "finetune": self.config.finetune.epochs}.get(self.stage)

    @property
    def pretrained(self) -> str:
        """The encoder fine-tuning started from: a checkpoint, a packaged encoder, 'none'; '-' for pre-training."""
        if self.stage != "finetune":
            return "-"
        if "pretrained" in self.info:
            return self.info["pretrained"] or "none"
        return f"{self.config.finetune.pretrained} (setting)"

    def summary(self, root: Path | None = None) -> dict[str, str]:
        """One table row: run, stage, config, dataset, epochs, pre-trained, val / test top-1, mean class acc."""
        def number(key: str) -> str:
            value = self.metrics.get(key)
            return f"{value:.4f}" if isinstance(value, (int, float)) else "-"

        name = self.path.relative_to(root) if root and self.path.is_relative_to(root) else self.path
        planned = self.epochs
        return {
            "run": str(name) if str(name) != "." else self.path.name,
            "stage": self.stage,
            "config": "+".join(Path(c).stem for c in self.info.get("configs", [])) or "-",
            "dataset": Path(self.config.data.path).stem or "-",
            "epochs": f"{self.epochs_done}/{planned}" if planned is not None else str(self.epochs_done),
            "pre-trained": self.pretrained,
            "val top-1": number("val_top1"),
            "top-1": number("top1"),
            "mean class acc": number("mean_class_acc"),
        }


def _epochs_done(path: Path) -> int:
    """Finished epochs, from the epoch column of ``logs/metrics.csv`` (epoch-end rows carry the epoch)."""
    log = path / "logs" / "metrics.csv"
    if not log.is_file():
        return 0
    with log.open(newline="", encoding="utf-8") as f:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(f) if row.get("epoch")
                  and any(k.endswith("_epoch") and row[k] for k in row)]
    return max(epochs) + 1 if epochs else 0


def read_run(path: str | Path) -> Run:
    """The run in directory ``path`` (it must hold a ``config.yaml``)."""
    path = Path(path)
    config_file = path / "config.yaml"
    if not (config_file.is_file() and _is_run(path)):
        raise SkeletonMAEError(f"{path} is not a run directory (it holds no config.yaml with the logs, checkpoints "
                               "or metrics of a run); `skeletonmae runs ls DIR` lists the runs under DIR")
    try:
        config = Config.from_dict(yaml.safe_load(config_file.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, UnicodeDecodeError, ConfigError) as e:
        raise SkeletonMAEError(f"{config_file} is not the config of a run ({e}); the run directory is damaged") from e
    return Run(path, config, _read_json(path / RUN_INFO), _read_json(path / "metrics.json"), _epochs_done(path))


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under ``root`` (``root`` itself included), in path order."""
    root = Path(root)
    if not root.is_dir():
        raise SkeletonMAEError(f"{root} is not a directory; give the folder that holds your runs (--out of "
                               "`skeletonmae pretrain` / `finetune`)")
    return [read_run(c.parent) for c in sorted(root.rglob("config.yaml")) if _is_run(c.parent)]


def _is_run(path: Path) -> bool:
    """A folder with a config.yaml that a run wrote (not a config file kept among the runs)."""
    return any((path / name).exists() for name in (RUN_INFO, "logs", "checkpoints", "metrics.json"))


def config_differences(runs: list[Run]) -> list[tuple[str, list[object]]]:
    """The config keys whose values differ between ``runs`` (the output directory aside), with each run's value."""
    values = [dict((name, value) for name, value, _ in keys(run.config)) for run in runs]
    return [(name, [v[name] for v in values]) for name, _, _ in keys()
            if name != "trainer.out_dir" and any(v[name] != values[0][name] for v in values)]
