"""SkeletonMAE pre-training (paper §3.1, §4.2): Adam, lr 1.5e-4, unlabelled clips, RCE on masked joints.

``pretrain.method`` selects what pre-trains the encoder G_E: SkeletonMAE (default) or the contrastive
baselines of Tab. 4b, GraphCL and JOAO (models/contrastive.py), on the same encoder and the same recipe.
``run_pretrain(cfg)`` trains and returns the checkpoint path; ``models.build.load_pretrained(path)`` gives
back the model (whose ``encoder`` is the joint encoder, whatever the method) with the config it was trained
with.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch

from ..config import Config, save_config
from ..models.build import FORMAT, build_pretrain_model
from ..models.contrastive import GraphContrast
from ..models.skeletonmae import SkeletonMAE
from ..runs import write_run_info
from .datamodule import SkeletonDataModule
from .trainer import build_trainer, check_schedule, fit, refuse_old_format, resume_path, run_lock


class PretrainTask(L.LightningModule):
    """Holds the pre-training model and its training step. Hyper-parameters: the whole config and C."""

    def __init__(self, config: dict, in_channels: int, format: int = FORMAT):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = Config.from_dict(config)
        self.model = build_pretrain_model(self.cfg, in_channels)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        refuse_old_format(checkpoint)

    def generator(self) -> torch.Generator:
        """The epoch's generator: masks and sampled frames depend only on (seed, epoch, rank), so a resumed run
        draws the same ones as an uninterrupted one (made at the first step of an epoch, also one resumed
        mid-way, where Lightning skips the epoch-start hook)."""
        if getattr(self, "_epoch", None) != self.current_epoch:
            key = (self.cfg.trainer.seed * 100_003 + self.current_epoch) * 1_009 + self.global_rank
            self._generator = torch.Generator(device=self.device).manual_seed(key)
            self._epoch = self.current_epoch
        return self._generator

    def training_step(self, batch, batch_idx):
        x = batch[0][:, 0]  # one clip per sample in training: [N, P, T, V, C]
        loss = self.model(x, generator=self.generator())["loss"]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(x), sync_dist=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if isinstance(self.model, SkeletonMAE):
            self.model.update_target()

    def on_train_epoch_end(self) -> None:
        # before ModelCheckpoint saves the epoch, so the checkpoint holds JOAO's updated p
        if isinstance(self.model, GraphContrast):
            self.model.end_epoch(lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"))

    def configure_optimizers(self):
        p = self.cfg.pretrain
        return torch.optim.Adam(self.model.parameters(), lr=p.lr, weight_decay=p.weight_decay)


def run_pretrain(cfg: Config, configs: list[str] | None = None) -> Path:
    """Pre-train on the unlabelled clips of ``pretrain.splits`` (default: the training split).

    ``configs``: the config files ``cfg`` was made from, recorded in the run's ``run.json``."""
    with run_lock(cfg.trainer.out_dir):
        return _pretrain(cfg, configs or [])


def _pretrain(cfg: Config, configs: list[str]) -> Path:
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    resume = resume_path(cfg)
    dm = SkeletonDataModule.from_config(cfg, cfg.pretrain.batch_size, train_splits=cfg.pretrain.splits, labelled=False)
    task = PretrainTask(cfg.to_dict(), dm.data.in_channels)
    check_schedule(len(dm.data.train_samples()), cfg.pretrain.batch_size, cfg.pretrain.epochs, "pretrain")
    trainer = build_trainer(cfg, cfg.pretrain.epochs)
    save_config(cfg, Path(cfg.trainer.out_dir) / "config.yaml")
    write_run_info(cfg.trainer.out_dir, "pretrain", configs)
    start = time.time()
    fit(trainer, task, dm, resume)
    path = Path(cfg.trainer.out_dir) / "checkpoints" / "last.ckpt"
    if trainer.is_global_zero:
        print(f"pre-training done in {time.time() - start:.0f} s; checkpoint: {path}")
    return path
