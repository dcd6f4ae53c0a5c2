"""SSL fine-tuning and testing (paper §3.2, §4.2).

Recipe (defaults = the paper's): SGD, momentum 0.9 (Nesterov), lr 0.1 at batch 128 scaled linearly
with the batch size, linear warm-up for 5 epochs, lr / 10 at epochs 90 and 100 of 110, label smoothing
0.1, cross-entropy. Testing averages the softmax of K clips per sample and reports top-1, top-5 and mean
class accuracy; per-sample predictions and the confusion matrix are written to files.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config, save_config
from ..data.annotations import read_label_map
from ..data.datamodule import SkeletonDataModule
from ..errors import CheckpointError
from ..fileio import atomic_open
from ..metrics import classification_metrics
from ..models.ssl import SSLClassifier
from ..nn.graph_net import GraphNet
from ..skeleton import get_layout
from .pretrain import load_pretrained
from .trainer import build_trainer, load_checkpoint, resume_path


def build_classifier(cfg: Config, in_channels: int, num_classes: int) -> SSLClassifier:
    m = cfg.model
    layout = get_layout(m.layout)
    adjacency = torch.as_tensor(layout.adjacency())

    def encoder() -> GraphNet:  # G_E, the same architecture as in pre-training
        return GraphNet(m.backbone, m.dim, m.dim, m.dim, m.encoder_layers, adjacency, norm=m.norm, act=m.act,
                        heads=m.gat_heads)

    return SSLClassifier(
        in_channels, num_classes, encoder, layout.num_joints, cfg.data.clip_len, dim=m.dim,
        strl_layers=m.strl_layers, joint_embedding=m.joint_embedding, person_fusion=m.person_fusion,
        temporal_kernel=m.temporal_kernel, temporal_dilations=m.temporal_dilations,
        temporal_strides=m.temporal_strides, head_hidden=m.head_hidden, dropout=m.dropout,
        pool=m.pool, rezero=m.strl_rezero, drop_path=m.drop_path,
    )


def check_compatible(pre: Config, cfg: Config, path: str) -> None:
    """A pre-trained encoder fits only a model of the same layout, width, depth and backbone."""
    keys = ("layout", "dim", "encoder_layers", "backbone", "norm", "act", "joint_embedding")
    diff = [f"model.{k}: checkpoint {getattr(pre.model, k)!r}, config {getattr(cfg.model, k)!r}" for k in keys
            if getattr(pre.model, k) != getattr(cfg.model, k)]
    if diff:
        raise CheckpointError(
            f"pre-trained checkpoint {path} does not fit this model: " + "; ".join(diff) +
            ". Use the same values in the fine-tuning config (or pre-train again)."
        )


class FinetuneTask(L.LightningModule):
    def __init__(self, config: dict, in_channels: int, num_classes: int, class_names: list[str] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = Config.from_dict(config)
        self.model = build_classifier(self.cfg, in_channels, num_classes)

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        logits = self.model(x[:, 0])
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.finetune.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({"train/loss": loss, "train/top1": acc}, prog_bar=True, on_step=True, on_epoch=True,
                      sync_dist=True, batch_size=len(y))
        return loss

    def configure_optimizers(self):
        f = self.cfg.finetune
        lr = f.lr * f.batch_size / f.base_batch_size
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=lr, momentum=f.momentum, nesterov=f.nesterov, weight_decay=f.weight_decay)
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // max(1, self.trainer.max_epochs))
        warmup, milestones = f.warmup_epochs * steps_per_epoch, [e * steps_per_epoch for e in f.milestones]

        def factor(step: int) -> float:
            ramp = (step + 1) / warmup if step < warmup else 1.0
            return ramp * 0.1 ** sum(step >= m for m in milestones)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def predict_scores(model: torch.nn.Module, loader, device: torch.device | str = "cpu") -> tuple[np.ndarray, ...]:
    """Softmax scores averaged over the K clips of each sample: (scores [N, classes], labels [N], index [N])."""
    model.eval().to(device)
    scores, labels, index = [], [], []
    for x, y, i in loader:
        n, k = x.shape[:2]
        prob = model(x.to(device).flatten(0, 1)).softmax(-1).reshape(n, k, -1).mean(1)
        scores.append(prob.cpu().numpy())
        labels.append(y.numpy())
        index.append(i.numpy())
    return np.concatenate(scores), np.concatenate(labels), np.concatenate(index)


def write_evaluation(out_dir: Path, samples: list[dict], scores: np.ndarray, labels: np.ndarray,
                     index: np.ndarray, extra: dict) -> dict:
    """metrics.json (with the confusion matrix) and predictions.csv (one row per sample) in ``out_dir``."""
    metrics = classification_metrics(scores, labels, scores.shape[1])
    report = {**extra, **metrics, "num_samples": len(labels)}
    with atomic_open(out_dir / "metrics.json", "w") as f:
        json.dump(report, f, indent=1)
    top5 = np.argsort(-scores, axis=1)[:, :5]
    with atomic_open(out_dir / "predictions.csv", "w") as f:
        w = csv.writer(f)
        w.writerow(["frame_dir", "label", "pred", "score", "top5"])
        for row, i in enumerate(index):
            w.writerow([samples[i]["frame_dir"], labels[row], top5[row, 0], f"{scores[row, top5[row, 0]]:.4f}",
                        " ".join(map(str, top5[row]))])
    return report


def run_finetune(cfg: Config) -> dict:
    """Fine-tune (from a pre-trained encoder or from scratch), test on the test split, write the results."""
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    resume = resume_path(cfg)
    out = Path(cfg.trainer.out_dir)
    dm = SkeletonDataModule(cfg, cfg.finetune.batch_size)
    names = read_label_map(Path(cfg.data.path).parent / "label_map.txt")
    task = FinetuneTask(cfg.to_dict(), dm.in_channels, dm.num_classes,
                        names if names and len(names) >= dm.num_classes else None)
    pretrained = cfg.finetune.pretrained
    if pretrained and pretrained.lower() != "none" and resume is None:
        pre_model, pre_cfg = load_pretrained(pretrained)
        check_compatible(pre_cfg, cfg, pretrained)
        if pre_model.in_channels != dm.in_channels:
            raise CheckpointError(f"{pretrained} was pre-trained on C = {pre_model.in_channels} input channels; "
                                  f"this data gives C = {dm.in_channels} "
                                  "(check data.use_score, data.motion, data.bone and 2D/3D)")
        task.model.load_pretrained(pre_model.encoder_state(), cfg.finetune.pretrained_layers)
    if cfg.finetune.freeze_encoder:
        for enc in task.model.encoders():
            enc.requires_grad_(False)
    trainer = build_trainer(cfg, cfg.finetune.epochs)
    save_config(cfg, out / "config.yaml")
    start = time.time()
    trainer.fit(task, train_dataloaders=dm.train_dataloader(), ckpt_path=resume)
    train_seconds = time.time() - start
    if not trainer.is_global_zero:
        return {}
    return test_model(task.model, dm, out, {"train_seconds": round(train_seconds, 1)})


def test_model(model: torch.nn.Module, dm: SkeletonDataModule, out: Path, extra: dict | None = None,
               split: str | None = None) -> dict:
    split = split or dm.cfg.data.test_split
    device = next(model.parameters()).device
    scores, labels, index = predict_scores(model, dm.test_dataloader(split), device)
    report = write_evaluation(out, dm.test_samples(split), scores, labels, index,
                              {"split": split, "test_clips": dm.cfg.data.test_clips, **(extra or {})})
    print(f"{split}: top1 {report['top1']:.4f}  top5 {report['top5']:.4f}  "
          f"mean class acc {report['mean_class_acc']:.4f}  ({report['num_samples']} samples) -> {out}/metrics.json")
    return report


def load_classifier(path: str | Path | dict, map_location="cpu") -> tuple[SSLClassifier, Config]:
    """A fine-tuned SSL classifier and its config from a fine-tuning checkpoint (a path, or its loaded dict)."""
    ckpt = path if isinstance(path, dict) else load_checkpoint(path, map_location)
    hp = ckpt.get("hyper_parameters", {})
    if not {"config", "in_channels", "num_classes"} <= set(hp):
        raise CheckpointError(f"{'the checkpoint' if isinstance(path, dict) else path} is not a SkeletonMAE "
                              "fine-tuning checkpoint")
    cfg = Config.from_dict(hp["config"])
    model = build_classifier(cfg, hp["in_channels"], hp["num_classes"])
    model.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
    return model.eval(), cfg
