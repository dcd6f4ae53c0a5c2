"""The peer trained within a CPU budget: MMAction2's ST-GCN++ with PYSKL's joint-stream pipeline, for
time_to_accuracy.py. Runs in benchmarks/.venv-peer (never imports skeletonmae); time_to_accuracy.py starts it
pinned to one core and passes the dataset as JSON (``--spec``).

Model: peer_stgcnpp.STGCNPlusPlus (STGCN gcn_adaptive='init', gcn_with_res=True, tcn_type='mstcn' + GCNHead);
on a layout other than COCO-17 the backbone is the same STGCN on the spec's graph (num_node, inward, center).
Pipeline (mmaction.datasets.transforms, applied to a fresh copy of each annotation at every read, as PYSKL's
dataset does): 2D PreNormalize2D, 3D PreNormalize3D; GenSkeFeat(feats=['j']); UniformSampleFrames(clip_len=100)
(train: 1 clip; test: ``--curve-test-clips`` along the way, ``--test-clips`` at the end); PoseDecode;
FormatGCNInput(num_person=2). Test scores: softmax averaged over the clips (PYSKL's average_clips='prob').
Optimiser: SGD, momentum 0.9, Nesterov, weight decay 5e-4, lr 0.1 at batch 128 (PYSKL: 16 per GPU x 8 GPUs)
scaled linearly to ``--batch`` (16: lr 0.0125); cosine annealing to 0 per step over the whole run.

Length: the ``--calib-steps`` training steps after the first are timed (CPU time, data loading included; s CPU
seconds per step), then the run takes n + floor((budget - spent) / (1.03 s)) optimiser steps in all, n the steps
done, spent the clock so far, 3 % a margin for step-time noise: the cosine schedule ends after them, in
general partway through an epoch (the budget holds a fractional number of PYSKL epochs; the calibration steps ran
at the starting lr, which the cosine keeps over its first steps anyway). Test top-1 is scored at ``--evals``
evenly spaced steps, the last one included.
Data are read in this process (no workers); evaluation's CPU time is left off the clock (_clock.CpuClock).

    .venv-peer/bin/python benchmarks/peer_train.py --spec '{...}' --budget-min 8 --json /tmp/peer.json
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _clock import CpuClock, evenly_spaced
from _common import machine_info
from peer_stgcnpp import STGCNPlusPlus, versions

PYSKL_LR, PYSKL_BATCH = 0.1, 128
CALIBRATION_MARGIN = 1.03


def read_split(spec: dict, split: str, max_clips: int) -> list[dict]:
    """The annotations of ``split``, joints mapped to the model's layout (``spec['joint_map']``: for each model
    joint its source joint or -1, which gets zero coordinates and score 0)."""
    # The shared annotation pickles are trusted dataset files (built by tools/data), so plain pickle is fine here.
    with open(spec["path"], "rb") as f:
        data = pickle.load(f)
    names = set(data["split"][split])
    samples = [a for a in data["annotations"] if a["frame_dir"] in names][: max_clips or None]
    if not samples:
        raise SystemExit(f"{spec['path']}: split '{split}' holds no clip; the file's splits are {list(data['split'])}")
    return [map_joints(a, spec.get("joint_map")) for a in samples]


def map_joints(ann: dict, joint_map: list[int] | None) -> dict:
    if joint_map is None:
        return ann
    idx = np.asarray(joint_map)
    present = (idx >= 0).astype(np.float32)
    out = dict(ann)
    out["keypoint"] = ann["keypoint"][:, :, np.maximum(idx, 0)] * present[:, None]
    out["keypoint_score"] = ann["keypoint_score"][:, :, np.maximum(idx, 0)] * present
    return out


def pipeline(is_3d: bool, clip_len: int, num_clips: int, test: bool):
    """PYSKL's joint-stream pipeline (the stgcn++ j configs) as mmaction 1.2.0 transforms."""
    from mmaction.datasets.transforms import (
        FormatGCNInput,
        GenSkeFeat,
        PoseDecode,
        PreNormalize2D,
        PreNormalize3D,
        UniformSampleFrames,
    )

    return [PreNormalize3D() if is_3d else PreNormalize2D(),
            GenSkeFeat(dataset="nturgb+d" if is_3d else "coco", feats=["j"]),
            UniformSampleFrames(clip_len=clip_len, num_clips=num_clips, test_mode=test),
            PoseDecode(), FormatGCNInput(num_person=2)]


def load_clip(ann: dict, transforms) -> np.ndarray:
    """[clips, M, T, V, C] of one annotation; the transforms get a copy (PreNormalize* change arrays in place)."""
    results = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in ann.items()}
    results.setdefault("total_frames", ann["keypoint"].shape[1])
    results["start_index"] = 0
    for t in transforms:
        results = t(results)
    return results["keypoint"]


def build_model(spec: dict, num_classes: int, in_channels: int) -> torch.nn.Module:
    model = STGCNPlusPlus(num_classes, in_channels)
    if spec["graph"] != "coco":
        from mmaction.models.backbones.stgcn import STGCN

        g = spec["graph"]
        layout = {"num_node": g["num_node"], "inward": [tuple(e) for e in g["inward"]], "center": g["center"]}
        model.backbone = STGCN(graph_cfg=dict(layout=layout, mode="spatial"), in_channels=in_channels,
                               gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn")
        model.backbone.init_weights()
    return model


@torch.inference_mode()
def evaluate(model: torch.nn.Module, samples: list[dict], transforms, batch: int) -> float:
    """Test top-1: softmax averaged over each sample's clips."""
    model.eval()
    correct = 0
    for i in range(0, len(samples), batch):
        chunk = samples[i:i + batch]
        x = torch.from_numpy(np.stack([load_clip(a, transforms) for a in chunk]))  # [N, K, M, T, V, C]
        probs = model(x.flatten(0, 1)).softmax(-1).reshape(len(chunk), x.shape[1], -1).mean(1)
        correct += int((probs.argmax(1) == torch.tensor([a["label"] for a in chunk])).sum())
    model.train()
    return correct / len(samples)


def cosine_lr(base: float, step: int, total: int | None) -> float:
    return base if total is None else 0.5 * base * (1 + math.cos(math.pi * min(step, total) / total))


def calibrated_steps(budget_s: float, spent_s: float, steps_done: int, step_s: float) -> int:
    """The most optimiser steps whose training still ends inside the budget (module docstring), at least 1 more."""
    return steps_done + max(1, math.floor((budget_s - spent_s) / (step_s * CALIBRATION_MARGIN)))


class Run:
    """The peer's training: data, model, optimiser, the step-based cosine schedule and the curve's points."""

    def __init__(self, a, spec: dict, clock: CpuClock):
        self.a, self.spec, self.clock = a, spec, clock
        self.train_set = read_split(spec, spec["train_split"], a.max_clips)
        self.test_set = read_split(spec, spec["test_split"], a.max_clips)
        in_channels = 3  # 2D: x, y, score; 3D: x, y, z
        self.model = build_model(spec, spec["num_classes"], in_channels).train()
        self.lr = PYSKL_LR * a.batch / PYSKL_BATCH
        self.opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                                   weight_decay=5e-4)
        self.transforms = pipeline(spec["is_3d"], a.clip_len, 1, test=False)
        self.steps_per_epoch = math.ceil(len(self.train_set) / a.batch)
        self.step, self.total, self.calibration, self.points = 0, None, {}, []

    def batches(self) -> Iterator[list[dict]]:
        """Shuffled batches, epoch after epoch (the last batch of an epoch may be smaller)."""
        while True:
            order = np.random.permutation(len(self.train_set))
            for i in range(0, len(order), self.a.batch):
                yield [self.train_set[j] for j in order[i:i + self.a.batch]]

    def train_step(self, chunk: list[dict]) -> None:
        x = torch.from_numpy(np.stack([load_clip(s, self.transforms) for s in chunk]))[:, 0]  # [N, M, T, V, C]
        y = torch.tensor([s["label"] for s in chunk])
        for group in self.opt.param_groups:
            group["lr"] = cosine_lr(self.lr, self.step, self.total)
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(x), y).backward()
        self.opt.step()
        self.step += 1

    def calibrate(self, first_step_end_s: float) -> None:
        """Set the schedule's length from the CPU seconds of the steps after the first (module docstring)."""
        step_s = (self.clock.seconds() - first_step_end_s) / (self.step - 1)
        budget_s = 60 * self.a.budget_min
        self.total = calibrated_steps(budget_s, self.clock.seconds(), self.step, step_s)
        self.calibration = {"steps_timed": self.step - 1, "step_cpu_s": step_s, "at_cpu_s": self.clock.seconds(),
                            "total_steps": self.total, "epochs": self.total / self.steps_per_epoch}
        print(f"calibration: {step_s:.2f} CPU s/step, {self.steps_per_epoch} steps/epoch -> {self.total} steps "
              f"({self.total / self.steps_per_epoch:.2f} epochs)", flush=True)

    def run(self) -> dict:
        first_step_end_s = 0.0
        for chunk in self.batches():
            self.train_step(chunk)
            if self.step == 1:
                first_step_end_s = self.clock.seconds()
            if self.total is None and self.step == 1 + self.a.calib_steps:
                self.calibrate(first_step_end_s)
            if self.total is not None and self.step in evenly_spaced(self.total, self.a.evals):
                self.score()
            if self.step == self.total:
                break
        return {"epochs": self.total / self.steps_per_epoch, "steps": self.step,
                "steps_per_epoch": self.steps_per_epoch, "lr": self.lr, "batch": self.a.batch,
                "train_clips": len(self.train_set), "test_samples": len(self.test_set),
                "calibration": self.calibration, "points": self.points, "train_cpu_min": self.clock.minutes()}

    def score(self) -> None:
        """The curve's point now: ``--curve-test-clips`` clips per sample along the way, ``--test-clips`` at the
        end; evaluation is off the clock."""
        at, final = self.clock.minutes(), self.step == self.total
        k = self.a.test_clips if final else self.a.curve_test_clips
        with self.clock.paused():
            top1 = evaluate(self.model, self.test_set, pipeline(self.spec["is_3d"], self.a.clip_len, k, test=True),
                            self.a.test_batch)
        epoch = self.step / self.steps_per_epoch
        self.points.append({"epoch": epoch, "step": self.step, "cpu_min": at, "top1": top1, "test_clips": k,
                            "final": final})
        print(f"step {self.step}/{self.total} (epoch {epoch:.2f}): {at:.2f} CPU-min, test top-1 {top1:.4f} "
              f"({k} clips)", flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True, help="the dataset as JSON: path, train_split, test_split, is_3d, "
                    "num_classes, graph ('coco' or {num_node, inward, center}), joint_map (or null)")
    ap.add_argument("--budget-min", type=float, required=True, help="training CPU-minutes the schedule must fit in")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clip-len", type=int, default=100, help="frames per clip (PYSKL: 100)")
    ap.add_argument("--test-clips", type=int, default=5, help="clips per test sample at the end (PYSKL: 10)")
    ap.add_argument("--curve-test-clips", type=int, default=1, help="clips per test sample along the way")
    ap.add_argument("--test-batch", type=int, default=16, help="test samples per forward pass")
    ap.add_argument("--evals", type=int, default=2, help="evenly spaced scored points along the schedule")
    ap.add_argument("--calib-steps", type=int, default=5, help="timed steps (after the first) that set the length")
    ap.add_argument("--max-clips", type=int, default=0, help="first N clips of each split (0: all; a smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the report here")
    a = ap.parse_args(argv)
    clock = CpuClock()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    spec = json.loads(a.spec)
    report = {"model": "ST-GCN++ (MMAction2 1.2.0, PYSKL joint pipeline)", "versions": versions(),
              "machine": machine_info(), "settings": {k: v for k, v in vars(a).items() if k not in ("spec", "json")},
              **Run(a, spec, clock).run()}
    text = json.dumps(report)
    if a.json:
        a.json.write_text(text + "\n")
    print(text, flush=True)
    return report


if __name__ == "__main__":
    main()
