"""One Lightning Trainer for every stage: devices, logs, atomic checkpoints, resume, NaN guard.

The same code runs on a laptop CPU, one GPU, several GPUs (DDP) and several nodes: the Trainer holds the
devices (``trainer.accelerator``, ``trainer.devices``, ``trainer.num_nodes``, ``trainer.strategy``).
Checkpoints are written atomically (temporary file, then rename) and loaded with ``weights_only=True``,
so a checkpoint cannot run code. A run whose ``out_dir`` holds ``checkpoints/last.ckpt`` resumes from it.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from ..config import Config
from ..errors import CheckpointError, ConfigError, SkeletonMAEError
from ..fileio import atomic_open
from ..models.build import FORMAT, load_checkpoint

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


def build_trainer(cfg: Config, max_epochs: int, validate: bool = False) -> L.Trainer:
    """The training Trainer: atomic checkpoints every epoch (``last.ckpt`` for resuming), CSV and TensorBoard logs
    in ``trainer.out_dir``, the NaN guard, a progress bar; validation every epoch when ``validate``."""
    t = cfg.trainer
    out = Path(t.out_dir)
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=out / "checkpoints", filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                        save_last=True, save_top_k=1, every_n_epochs=1),
        NonFiniteLossGuard(),
        LearningRateMonitor(logging_interval="epoch"),
    ]
    if t.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, t.log_every_n_steps)))
    return _trainer(
        cfg,
        default_root_dir=str(out),
        max_epochs=max_epochs,
        logger=[CSVLogger(str(out), name="logs", version=""), TensorBoardLogger(str(out), name="tb", version="")],
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
