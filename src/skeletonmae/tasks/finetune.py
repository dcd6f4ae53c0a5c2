"""SSL fine-tuning and testing (paper §3.2, §4.2).

Recipe (defaults = the paper's): SGD, momentum 0.9 (Nesterov), lr 0.1 at batch 128 scaled linearly
with the batch size, linear warm-up for 5 epochs, lr / 10 at epochs 90 and 100 of 110, label smoothing
0.1, cross-entropy. Testing averages the softmax of K clips per sample (``SSLClassifier.predict_clips``) and
reports top-1, top-5 and mean class accuracy (torchmetrics, synchronised over every process, so a multi-GPU
run tests on all of them); per-sample predictions and the confusion matrix are written to files.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ..config import Config, save_config
from ..data.annotations import read_label_map
from ..data.dataset import SkeletonData
from ..errors import CheckpointError, DataError
from ..fileio import atomic_open
from ..models.build import (
    FORMAT,
    PretrainedEncoder,
    build_classifier,
    class_names,
    find_packaged_encoder,
    load_checkpoint,
    load_encoder,
)
from ..runs import write_run_info
from ..scores import TEST_SCORES, VAL_SCORES, Scores, write_predictions, write_scores
from ..skeleton import get_layout, joint_mapping
from .datamodule import SkeletonDataModule
from .trainer import build_trainer, check_schedule, fit, refuse_old_format, resume_path, run_lock, test_trainer


class FinetuneTask(L.LightningModule):
    """The SSL classifier with its training step, optimiser and schedule, and its test step.

    Hyper-parameters (saved in every checkpoint): the whole config, C, the number of classes, their names.
    """

    def __init__(self, config: dict, in_channels: int, num_classes: int, class_names: list[str] | None = None,
                 format: int = FORMAT):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = Config.from_dict(config)
        self.model = build_classifier(self.cfg, in_channels, num_classes)
        self.top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.confusion = MulticlassConfusionMatrix(num_classes)
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.test_results: dict = {}
        self.test_log_prefix = "test"  # what a test pass logs its metrics under (the validation scores': val_scores)

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> FinetuneTask:
        """A task holding a fine-tuned classifier (any checkpoint format), for testing."""
        from ..models.build import load_classifier

        model, cfg = load_classifier(ckpt)
        hp = ckpt["hyper_parameters"]
        task = cls(cfg.to_dict(), int(hp["in_channels"]), int(hp["num_classes"]), class_names(ckpt))
        task.model = model
        return task

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        refuse_old_format(checkpoint)

    def training_step(self, batch, batch_idx):
        x, y, _ = batch
        logits = self.model(x[:, 0])
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.finetune.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({"train/loss": loss, "train/top1": acc}, prog_bar=True, on_step=True, on_epoch=True,
                      sync_dist=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, _ = batch
        self.val_top1(self.model.predict_clips(x), y)
        self.log("val/top1", self.val_top1, on_epoch=True, prog_bar=True, batch_size=len(y))

    def on_test_epoch_start(self) -> None:
        self._rows: dict[str, list[torch.Tensor]] = {"index": [], "scores": [], "labels": []}

    def test_step(self, batch, batch_idx):
        x, y, index = batch
        probs = self.model.predict_clips(x)
        self.top1.update(probs, y)
        self.top5.update(probs, y)
        self.confusion.update(probs, y)
        for key, value in zip(self._rows, (index, probs, y), strict=True):
            self._rows[key].append(value)

    def on_test_epoch_end(self) -> None:
        confusion = self.confusion.compute()
        support = confusion.sum(1)
        # mean class accuracy as PYSKL defines it: recall averaged over the classes that occur in the labels
        recall = confusion.diagonal()[support > 0].float() / support[support > 0]
        metrics = {"top1": float(self.top1.compute()), "top5": float(self.top5.compute()),
                   "mean_class_acc": float(recall.mean())}
        self.log_dict({f"{self.test_log_prefix}/{k}": v for k, v in metrics.items()})
        empty = {"index": (0,), "scores": (0, self.model.num_classes), "labels": (0,)}
        rows = {k: torch.cat(v) if v else torch.zeros(empty[k], device=self.device,
                                                      dtype=torch.float if k == "scores" else torch.long)
                for k, v in self._rows.items()}
        self.test_results = {**metrics, "confusion": confusion.tolist(),
                             **{k: self._gather(v).cpu().numpy() for k, v in rows.items()}}
        for metric in (self.top1, self.top5, self.confusion):
            metric.reset()

    def _gather(self, rows: torch.Tensor) -> torch.Tensor:
        """The rows of every process, concatenated (processes may hold different numbers of rows)."""
        if self.trainer.world_size == 1:
            return rows
        sizes = self.all_gather(torch.tensor(len(rows), device=rows.device)).tolist()
        padded = torch.zeros(max(sizes), *rows.shape[1:], dtype=rows.dtype, device=rows.device)
        padded[: len(rows)] = rows
        gathered = self.all_gather(padded)  # [world, max rows, ...]
        return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)])

    def configure_optimizers(self):
        f = self.cfg.finetune
        lr = f.lr * f.batch_size / f.base_batch_size
        opt = torch.optim.SGD(param_groups(self.model, f, lr), lr=lr, momentum=f.momentum, nesterov=f.nesterov,
                              weight_decay=f.weight_decay)
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // max(1, self.trainer.max_epochs))
        warmup, milestones = f.warmup_epochs * steps_per_epoch, [e * steps_per_epoch for e in f.milestones]

        def factor(step: int) -> float:
            ramp = (step + 1) / warmup if step < warmup else 1.0
            return ramp * 0.1 ** sum(step >= m for m in milestones)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def param_groups(model: torch.nn.Module, f, lr: float) -> list[dict]:
    """The trainable parameters as SGD groups: those a pre-trained encoder loads at ``lr * f.encoder_lr_scale``,
    the rest at ``lr`` (one group when the scale is 1). The groups do not depend on whether an encoder was
    loaded, so a resumed run's optimiser state fits them."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if f.encoder_lr_scale == 1:
        return [{"params": trainable}]
    loaded = {id(p) for p in model.pretrained_parameters(f.pretrained_layers)}
    groups = [{"params": [p for p in trainable if id(p) not in loaded], "lr": lr},
              {"params": [p for p in trainable if id(p) in loaded], "lr": lr * f.encoder_lr_scale}]
    return [g for g in groups if g["params"]]


def write_evaluation(out_dir: Path, samples: list[dict], results: dict, extra: dict) -> dict:
    """metrics.json (with the confusion matrix), predictions.csv and scores.csv (one row per sample, in the split's
    order) in ``out_dir``."""
    report = {**extra, **{k: results[k] for k in ("top1", "top5", "mean_class_acc", "confusion")},
              "num_samples": len(results["labels"])}
    with atomic_open(out_dir / "metrics.json", "w") as f:
        json.dump(report, f, indent=1)
    scores = split_scores(samples, results)
    write_predictions(out_dir / "predictions.csv", scores)
    write_scores(out_dir / TEST_SCORES, scores)
    return report


def split_scores(samples: list[dict], results: dict) -> Scores:
    """The class scores of a test pass (``FinetuneTask.test_results``) in the split's order, with the sample ids."""
    order = np.argsort(results["index"], kind="stable")  # whichever process tested which sample
    return Scores([str(samples[i]["frame_dir"]) for i in results["index"][order]], results["labels"][order],
                  results["scores"][order])


def test_task(task: FinetuneTask, trainer: L.Trainer, dm: SkeletonDataModule, out: Path,
              extra: dict | None = None) -> dict:
    """Test ``task`` on ``dm``'s test split on every process; the first writes metrics.json, predictions.csv and
    the class scores (scores.csv)."""
    trainer.test(task, datamodule=dm, verbose=False)
    if not trainer.is_global_zero:
        return {}
    split = dm.test_split or dm.data.cfg.data.test_split
    report = write_evaluation(out, dm.data.test_samples(split), task.test_results,
                              {"split": split, "test_clips": dm.data.cfg.data.test_clips, **(extra or {})})
    print(f"{split}: top1 {report['top1']:.4f}  top5 {report['top5']:.4f}  "
          f"mean class acc {report['mean_class_acc']:.4f}  ({report['num_samples']} samples) -> {out}/metrics.json")
    return report


def score_validation(task: FinetuneTask, trainer: L.Trainer, data: SkeletonData, out: Path) -> None:
    """The class scores of the validation part (``data.val_fraction``) -> ``out``/val_scores.csv: what
    ``skeletonmae ensemble`` chooses its fusion weights on."""
    task.test_log_prefix = "val_scores"
    try:
        trainer.test(task, datamodule=SkeletonDataModule(data, test_validation=True), verbose=False)
    finally:
        task.test_log_prefix = "test"
    if trainer.is_global_zero:
        write_scores(out / VAL_SCORES, split_scores(data.val_samples(), task.test_results))
        print(f"validation: top1 {task.test_results['top1']:.4f} ({len(data.val_samples())} clips) -> "
              f"{out / VAL_SCORES}")


def pretrained_encoder(cfg: Config, data: SkeletonData) -> PretrainedEncoder | None:
    """The encoder ``finetune.pretrained`` names: none, the packaged one that fits (``auto``), or a file.

    A file whose encoder does not fit the model is an error; one pre-trained with other ``data.*`` settings
    (normalisation) is used with a warning. ``auto`` takes a packaged encoder only when everything matches and
    says which one, or why none does (then the model trains from scratch)."""
    source = cfg.finetune.pretrained
    if source.lower() in ("", "none"):
        return None
    if source == "auto":
        encoder, why = find_packaged_encoder(cfg, data.in_channels)
        print(f"pre-trained encoder: {why}" + ("" if encoder else "; training from scratch"), file=sys.stderr)
    else:
        encoder = load_encoder(source)
        fit, other = encoder.differences(cfg, data.in_channels)
        if fit:
            raise CheckpointError(f"pre-trained encoder {source} does not fit this model: " + "; ".join(fit) +
                                  ". Use the same encoder.* values and input channels (or pre-train again).")
        if other:
            print(f"skeletonmae: warning: {source} was pre-trained with other data settings (" + "; ".join(other) +
                  "): its features may not suit this input", file=sys.stderr)
    if encoder is not None:
        mapped = int((joint_mapping(cfg.data.layout, cfg.encoder.layout) >= 0).sum())
        source, target = get_layout(cfg.data.layout), get_layout(cfg.encoder.layout)
        if mapped < target.num_joints:
            print(f"skeletonmae: note: {mapped} of the encoder's {target.num_joints} joints ({target.name}) are found "
                  f"in data.layout {source.name} by name; the others stay empty", file=sys.stderr)
    return encoder


def run_finetune(cfg: Config, configs: list[str] | None = None, callbacks: list[L.Callback] | None = None) -> dict:
    """Fine-tune (from a pre-trained encoder or from scratch), test on the test split, write the results.

    ``configs``: the config files ``cfg`` was made from, recorded in the run's ``run.json``; ``callbacks``: extra
    Lightning callbacks of the training Trainer (benchmarks/time_to_accuracy.py times the run with one)."""
    with run_lock(cfg.trainer.out_dir):
        return _finetune(cfg, configs or [], callbacks or [])


def _finetune(cfg: Config, configs: list[str], callbacks: list[L.Callback]) -> dict:
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    resume = resume_path(cfg)
    out = Path(cfg.trainer.out_dir)
    dm = SkeletonDataModule.from_config(cfg, cfg.finetune.batch_size)
    data = dm.data
    if data.num_classes < 2:
        raise DataError(f"{cfg.data.path}: a classifier needs at least 2 classes; every label in the file is 0")
    check_schedule(len(data.train_samples()), cfg.finetune.batch_size, cfg.finetune.epochs, "finetune")
    names = read_label_map(Path(cfg.data.path).parent / "label_map.txt", data.num_classes)
    task = FinetuneTask(cfg.to_dict(), data.in_channels, data.num_classes, names)
    encoder = pretrained_encoder(cfg, data) if resume is None else None
    if encoder is not None:
        task.model.load_pretrained(encoder.state, cfg.finetune.pretrained_layers)
    if cfg.finetune.freeze_encoder:
        for graph in task.model.layer_graphs():
            graph.requires_grad_(False)
    trainer = build_trainer(cfg, cfg.finetune.epochs, validate=bool(data.val_samples()), callbacks=callbacks)
    save_config(cfg, out / "config.yaml")
    source = None if encoder is None else (f"packaged {encoder.name}" if cfg.finetune.pretrained == "auto"
                                           else cfg.finetune.pretrained)
    write_run_info(out, "finetune", configs, source)
    start = time.time()
    fit(trainer, task, dm, resume)
    extra = {"train_seconds": round(time.time() - start, 1)}
    if "val/top1" in trainer.callback_metrics:
        extra.update(val_top1=float(trainer.callback_metrics["val/top1"]), val_clips=len(data.val_samples()))
    if data.val_samples():
        score_validation(task, trainer, data, out)
    if cfg.finetune.test:
        return test_task(task, trainer, dm, out, extra)
    if trainer.is_global_zero:  # validation only: the test split stays unseen
        with atomic_open(out / "metrics.json", "w") as f:
            json.dump({**extra, "tested": False}, f, indent=1)
        print(f"validation top1 {extra.get('val_top1', float('nan')):.4f} -> {out}/metrics.json (not tested)")
    return extra


def run_test(checkpoint: str | Path, cfg: Config, out: Path, split: str | None = None,
             validation: bool = False) -> dict:
    """Test a fine-tuning checkpoint on ``split`` of the data ``cfg`` names (``skeletonmae test``); with
    ``validation``, score the validation part its config holds out instead (val_scores.csv)."""
    task = FinetuneTask.from_checkpoint(load_checkpoint(checkpoint))
    data = SkeletonData(cfg, cfg.finetune.batch_size)
    if not validation:
        return test_task(task, test_trainer(cfg), SkeletonDataModule(data, split), out,
                         {"checkpoint": str(checkpoint)})
    if not data.val_samples():
        raise DataError(f"the config of {checkpoint} holds out no validation part (data.val_fraction="
                        f"{cfg.data.val_fraction}): there is nothing to score; fine-tune with data.val_fraction > 0 "
                        "to get one")
    score_validation(task, test_trainer(cfg), data, out)
    return {"val_top1": task.test_results["top1"]}
