"""One Lightning Trainer for every stage: devices, logs, atomic checkpoints, resume, NaN guard.

The same code runs on a laptop CPU, one GPU, several GPUs (DDP) and several nodes: the Trainer holds the
devices (``trainer.accelerator``, ``trainer.devices``, ``trainer.num_nodes``, ``trainer.strategy``).
Checkpoints are written atomically (temporary file, then rename) and loaded with ``weights_only=True``,
so a checkpoint cannot run code. A run whose ``out_dir`` holds ``checkpoints/last.ckpt`` resumes from it.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from ..config import Config
from ..errors import CheckpointError, ConfigError, Interrupted, SkeletonMAEError
from ..fileio import atomic_open
from ..models.build import FORMAT, load_checkpoint
from .progress import EpochSummary, RunProgressBar

# Lightning's notices (devices found, tips, adverts) and deprecation noise, not actionable by a user of this package.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*You passed in a `val_dataloader` but have no `validation_step`.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a truncated file and never unpickles code."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_open(path, "wb") as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return load_checkpoint(path, map_location=map_location)


def refuse_old_format(checkpoint: dict) -> None:
    """Resuming training needs the checkpoint's own format (its optimiser state follows the parameter order)."""
    if int(checkpoint.get("hyper_parameters", {}).get("format", 0)) < FORMAT:
        raise CheckpointError("this run was written by an earlier version of skeletonmae (checkpoint format 0); "
                              "its weights load for testing, prediction, export and as a pre-trained encoder, but "
                              "its training cannot be resumed: start a new run with another --out")


class NonFiniteLossGuard(Callback):
    """Stop a run on a NaN/inf loss, naming the step and batch; the last good checkpoint stays as it was."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise SkeletonMAEError(
                f"training loss became {float(loss)} at global step {trainer.global_step}, epoch "
                f"{trainer.current_epoch}, batch {batch_idx}. The last good checkpoint is kept in "
                f"{trainer.default_root_dir}/checkpoints. Lower the learning rate, or check the data with "
                "`skeletonmae data check`."
            )


class SaveOnInterrupt(Callback):
    """On SIGTERM (a scheduler ending the job) or Ctrl-C during training: save a resumable ``last.ckpt`` first."""

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)) and trainer.training:
            trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt")


def fit(trainer: L.Trainer, task: L.LightningModule, dm: L.LightningDataModule, resume: str | None) -> None:
    """``trainer.fit``; a SIGTERM becomes :class:`Interrupted` (exit 143, not 0) naming the checkpoint to resume."""
    try:
        trainer.fit(task, datamodule=dm, ckpt_path=resume)
    except MisconfigurationException as e:  # e.g. resuming a run at epoch 7 with *.epochs=5
        raise ConfigError(f"cannot continue the run in {trainer.default_root_dir}: {str(e).splitlines()[0]}") from e
    except SIGTERMException as e:
        raise Interrupted(f"stopped by SIGTERM at epoch {trainer.current_epoch}, step {trainer.global_step}; the run "
                          f"was saved in {trainer.default_root_dir}/checkpoints/last.ckpt. Continue it with the same "
                          "command and --resume.") from e


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that a resumed run appends to ``logs/metrics.csv`` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])


class RunCSVLogger(CSVLogger):
    """``logs/metrics.csv`` of a run, kept across resumes (:class:`_AppendingWriter`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def _first_process() -> bool:
    """True unless this is a second (or later) process of a multi-process run."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


@contextmanager
def run_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold ``out_dir/.lock`` for a run: a second run into the same directory is refused while this one lives
    (released by the kernel when the process ends, however it ends)."""
    if not _first_process():
        yield
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise SkeletonMAEError(f"{out} is in use by another run (process {f.read().strip() or '?'}); wait for "
                                   "it to end or choose another --out; nothing was changed") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def last_checkpoint(out_dir: str | Path) -> Path | None:
    path = Path(out_dir) / "checkpoints" / "last.ckpt"
    return path if path.is_file() else None


def _trainer(cfg: Config, **kw) -> L.Trainer:
    """A Lightning Trainer on the devices ``trainer.*`` names; a setting Lightning refuses is a ConfigError."""
    t = cfg.trainer
    try:
        return L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
                         precision=t.precision, deterministic=t.deterministic, enable_model_summary=False, **kw)
    except (MisconfigurationException, ValueError, RuntimeError) as e:
        raise ConfigError(f"the trainer settings do not work here (trainer.accelerator={t.accelerator!r}, "
                          f"trainer.devices={t.devices!r}, trainer.strategy={t.strategy!r}, trainer.precision="
                          f"{t.precision!r}): {str(e).splitlines()[0][:300]}") from e


MIN_STEPS = 500  # fewer optimiser steps than this barely move a model: say so


def check_schedule(clips: int, batch_size: int, epochs: int, stage: str) -> None:
    """Refuse a batch larger than the training clips; warn when the run takes few optimiser steps."""
    if batch_size > clips:
        scaled = " (and finetune.lr is scaled for the full one)" if stage == "finetune" else ""
        raise ConfigError(f"{stage}.batch_size={batch_size} is larger than the {clips} training clips: every epoch "
                          f"would be one partial batch{scaled}; set {stage}.batch_size to {clips} or less")
    steps = epochs * (clips // batch_size)
    if steps < MIN_STEPS:
        print(f"skeletonmae: warning: {stage} takes only {steps} optimiser steps ({epochs} epochs x "
              f"{clips // batch_size} batches of {batch_size}); a smaller {stage}.batch_size or more {stage}.epochs "
              "trains the model more", file=sys.stderr)


def build_trainer(cfg: Config, max_epochs: int, validate: bool = False,
                  callbacks: list[Callback] | None = None) -> L.Trainer:
    """The training Trainer: atomic checkpoints every epoch (``last.ckpt`` for resuming), CSV and TensorBoard logs
    in ``trainer.out_dir`` (the learning rate among them), the NaN guard, a summary line per epoch with the run's
    ETA and a progress bar (:mod:`.progress`); validation every epoch when ``validate``; ``callbacks`` (e.g. a
    benchmark's clock) run after these."""
    t = cfg.trainer
    out = Path(t.out_dir)
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=out / "checkpoints", filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                        save_last=True, save_top_k=1, every_n_epochs=1),
        NonFiniteLossGuard(),
        SaveOnInterrupt(),
        LearningRateMonitor(logging_interval="epoch"),
        summary := EpochSummary(),
        *(callbacks or []),
    ]
    if t.progress:
        callbacks.append(RunProgressBar(summary, refresh_rate=max(1, t.log_every_n_steps)))
    return _trainer(
        cfg,
        default_root_dir=str(out),
        max_epochs=max_epochs,
        logger=[RunCSVLogger(str(out), name="logs", version=""), TensorBoardLogger(str(out), name="tb", version="")],
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        enable_progress_bar=t.progress,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
    )


def test_trainer(cfg: Config) -> L.Trainer:
    """A Trainer that only tests: the same devices, no logs, no checkpoints."""
    return _trainer(cfg, logger=False, enable_checkpointing=False, enable_progress_bar=cfg.trainer.progress)


def resume_path(cfg: Config) -> str | None:
    """``last.ckpt`` of ``out_dir`` when resuming; None for a fresh run. Never overwrites a run silently."""
    last = last_checkpoint(cfg.trainer.out_dir)
    if last is None:
        return None
    if not cfg.trainer.resume:
        raise SkeletonMAEError(
            f"{cfg.trainer.out_dir} already holds a run ({last}). Pass --resume to continue it, or choose "
            "another output directory with --out; nothing was overwritten."
        )
    check_same_run(cfg, Path(cfg.trainer.out_dir) / "config.yaml")
    return str(last)


# Keys a resumed run may change: where and how it runs, a moved data file, a longer schedule, and the
# pre-trained encoder (read only when a run starts).
_RESUMABLE_CHANGES = ("trainer.", "data.num_workers", "data.path", "pretrain.epochs", "finetune.epochs",
                      "finetune.pretrained")


def check_same_run(cfg: Config, saved: Path) -> None:
    """Refuse to resume a run whose saved config differs from ``cfg`` in a key that changes the run."""
    if not saved.exists():
        return
    with saved.open() as f:
        before = Config.from_dict(yaml.safe_load(f) or {}).to_dict()
    now = cfg.to_dict()
    for section, values in now.items():
        for key, value in values.items():
            name = f"{section}.{key}"
            if value != before[section][key] and not name.startswith(_RESUMABLE_CHANGES):
                raise SkeletonMAEError(
                    f"{cfg.trainer.out_dir} holds a run made with {name}={before[section][key]!r}, not "
                    f"{value!r}: resume it with the same config, or choose another output directory with --out; "
                    "nothing was overwritten."
                )
