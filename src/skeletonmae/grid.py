"""A grid of training runs that resumes: each run optionally pre-trains, then fine-tunes and tests.

Shared by ``skeletonmae ablate`` (:mod:`skeletonmae.ablation`) and ``experiments/finetune_compare.py``.
A run is finished when its fine-tuning directory holds ``metrics.json``: finished runs are not run again,
their metrics are read back, so an interrupted grid resumes where it stopped (an unfinished run continues
from its last checkpoint when its overrides say ``trainer.resume=true``). Every run's configs are loaded
before the first run starts, so a mistyped key in the last run fails in seconds, not hours. The caller turns
each run's metrics into a row; after every run the rows so far go to the caller's ``write``, so the results
file is always up to date.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import load_config


@dataclass(frozen=True)
class GridRun:
    """One run of a grid.

    Args:
        finetune_dir: the fine-tuning output directory (``trainer.out_dir``, set here); the run is finished
            when it holds ``metrics.json``.
        config: the config to fine-tune, as :func:`~skeletonmae.config.load_config` takes it (a file or
            packaged name, a list of them, or None for the defaults).
        overrides: fine-tuning overrides.
        pretrain_dir: pre-train first, into this directory, and fine-tune from its last checkpoint
            (``finetune.pretrained`` is set here); None: no pre-training, ``overrides`` say what fine-tuning
            starts from.
        pretrain_config: the config to pre-train (default: ``config``).
        pretrain_overrides: pre-training overrides.
        info: what the caller needs to make the run's row; not used here.
    """

    finetune_dir: Path
    config: Any
    overrides: list[str]
    pretrain_dir: Path | None = None
    pretrain_config: Any = None
    pretrain_overrides: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def _finetune_overrides(self, extra: list[str]) -> list[str]:
        return [*self.overrides, *extra, f"trainer.out_dir={self.finetune_dir}"]

    def _pretrain(self) -> tuple[Any, list[str]]:
        config = self.config if self.pretrain_config is None else self.pretrain_config
        return config, [*self.pretrain_overrides, f"trainer.out_dir={self.pretrain_dir}"]


def run_grid(runs: Sequence[GridRun], make_row: Callable[[GridRun, dict, float], dict],
             write: Callable[[list[dict]], Any] | None = None, rows: list[dict] | None = None) -> list[dict]:
    """Run (or read back) every run in order; return the rows.

    Args:
        runs: the runs.
        make_row: ``make_row(run, report, seconds)`` -> the run's row; ``report`` is its ``metrics.json``
            (what fine-tuning returned, or the file of a finished run), ``seconds`` the wall time this call
            spent on the run (about 0 for a finished one).
        write: called with all rows so far after every run (e.g. to write the results file).
        rows: a list to append the rows to (default: a new one), e.g. holding rows the caller made before.
    """
    from .tasks.finetune import run_finetune
    from .tasks.pretrain import run_pretrain

    for run in runs:  # check every config before spending hours on the first runs
        load_config(run.config, run._finetune_overrides([]))
        if run.pretrain_dir is not None:
            load_config(*run._pretrain())
    rows = [] if rows is None else rows
    for run in runs:
        metrics_file = Path(run.finetune_dir) / "metrics.json"
        start = time.time()
        if metrics_file.is_file():
            report = json.loads(metrics_file.read_text())
        else:
            extra = []
            if run.pretrain_dir is not None:
                extra.append(f"finetune.pretrained={run_pretrain(load_config(*run._pretrain()))}")
            report = run_finetune(load_config(run.config, run._finetune_overrides(extra)))
        rows.append(make_row(run, report, time.time() - start))
        if write is not None:
            write(rows)
    return rows
