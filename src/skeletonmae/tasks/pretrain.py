"""SkeletonMAE pre-training (paper §3.1, §4.2): Adam, lr 1.5e-4, unlabelled clips, RCE on masked joints.

``pretrain.method`` selects what pre-trains the encoder G_E: SkeletonMAE (default) or the contrastive
baselines of Tab. 4b, GraphCL and JOAO (models/contrastive.py), on the same encoder and the same recipe.
``run_pretrain(cfg)`` trains and returns the checkpoint path; ``load_pretrained(path)`` gives back the
model (whose ``encoder`` is G_E and ``encoder_state()`` its weights, whatever the method) together with the
config it was trained with, for the SSL model.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch

from ..config import Config, save_config
from ..data.datamodule import SkeletonDataModule
from ..errors import CheckpointError
from ..models.contrastive import GraphContrast
from ..models.masking import JointMasker
from ..models.skeletonmae import SkeletonMAE
from .trainer import build_trainer, load_checkpoint, resume_path


def build_skeletonmae(cfg: Config, in_channels: int) -> SkeletonMAE:
    return build_pretrain_model(cfg, in_channels, "skeletonmae")


def build_pretrain_model(cfg: Config, in_channels: int, method: str | None = None) -> SkeletonMAE | GraphContrast:
    """The model that pre-trains G_E by ``method`` (default ``pretrain.method``): SkeletonMAE, GraphCL or JOAO."""
    m, p = cfg.model, cfg.pretrain
    method = method or p.method
    encoder = dict(layout=m.layout, dim=m.dim, encoder_layers=m.encoder_layers, backbone=m.backbone, norm=m.norm,
                   act=m.act, gat_heads=m.gat_heads, joint_embedding=m.joint_embedding)
    if method != "skeletonmae":
        return GraphContrast(in_channels, **encoder, method=method, temperature=p.temperature,
                             aug_ratio=p.aug_ratio, frames_per_clip=p.frames_per_clip, joao_gamma=p.joao_gamma)
    masker = JointMasker(
        m.layout, mode=m.mask, regions=m.mask_regions, num_regions=m.mask_num_regions, ratio=m.mask_ratio,
        per_frame=m.mask_per_frame,
    )
    return SkeletonMAE(
        in_channels, **encoder, decoder_backbone=m.decoder_backbone or None, remask=m.remask, target=m.target,
        target_window=m.target_window, beta=m.beta, rce_form=m.rce_form, masker=masker,
    )


class PretrainTask(L.LightningModule):
    """Holds the pre-training model and its training step. Hyper-parameters: the whole config and C."""

    def __init__(self, config: dict, in_channels: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = Config.from_dict(config)
        self.model = build_pretrain_model(self.cfg, in_channels)

    def on_train_epoch_start(self) -> None:
        # masks, sampled frames and augmentations depend only on (seed, epoch, rank): a resumed run draws the
        # same ones as an uninterrupted one
        key = (self.cfg.trainer.seed * 100_003 + self.current_epoch) * 1_009 + self.global_rank
        self.generator = torch.Generator(device=self.device).manual_seed(key)

    def training_step(self, batch, batch_idx):
        x = batch[0][:, 0]  # one clip per sample in training: [N, P, T, V, C]
        loss = self.model(x, generator=self.generator)["loss"]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(x), sync_dist=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if isinstance(self.model, SkeletonMAE):
            self.model.update_target(self.cfg.model.ema_momentum)

    def on_train_epoch_end(self) -> None:
        # before ModelCheckpoint saves the epoch, so the checkpoint holds JOAO's updated p
        if isinstance(self.model, GraphContrast):
            self.model.end_epoch(lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"))

    def configure_optimizers(self):
        p = self.cfg.pretrain
        return torch.optim.Adam(self.model.parameters(), lr=p.lr, weight_decay=p.weight_decay)


def run_pretrain(cfg: Config) -> Path:
    """Pre-train on the unlabelled clips of ``pretrain.splits`` (default: the training split)."""
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    resume = resume_path(cfg)
    dm = SkeletonDataModule(cfg, cfg.pretrain.batch_size, train_splits=cfg.pretrain.splits, labelled=False)
    task = PretrainTask(cfg.to_dict(), dm.in_channels)
    trainer = build_trainer(cfg, cfg.pretrain.epochs)
    save_config(cfg, Path(cfg.trainer.out_dir) / "config.yaml")
    start = time.time()
    trainer.fit(task, train_dataloaders=dm.train_dataloader(), ckpt_path=resume)
    path = Path(cfg.trainer.out_dir) / "checkpoints" / "last.ckpt"
    if trainer.is_global_zero:
        print(f"pre-training done in {time.time() - start:.0f} s; checkpoint: {path}")
    return path


def load_pretrained(path: str | Path | dict, map_location="cpu") -> tuple[SkeletonMAE | GraphContrast, Config]:
    """The pre-trained model (its ``encoder`` is G_E) and its config, from a checkpoint path or dict."""
    ckpt = path if isinstance(path, dict) else load_checkpoint(path, map_location)
    hp = ckpt.get("hyper_parameters", {})
    if "config" not in hp or "in_channels" not in hp or "state_dict" not in ckpt:
        name = "the checkpoint" if isinstance(path, dict) else path
        raise CheckpointError(f"{name} is not a SkeletonMAE pre-training checkpoint (no config / weights in it)")
    cfg = Config.from_dict(hp["config"])
    model = build_pretrain_model(cfg, hp["in_channels"])
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model, cfg
