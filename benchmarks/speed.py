"""Speed: training-step throughput, inference latency / throughput and FLOPs, side by side with the peer.

What is measured (eager PyTorch, fp32, CPU, the threads and allocator of this process):

- training throughput (clips/s) of one optimiser step = forward + backward + step, for SkeletonMAE
  pre-training (SkeletonMAE, Adam) and SSL fine-tuning (build_classifier, SGD + label smoothing), at
  the paper's shapes (T = 64, V = 17, P = 2 persons both present, D = 64, L_D = 3, M = 3, batch 16) and the
  demo's (T = 32, P = 2, batch 32); warm-up steps are excluded, the rate is the median over repeats;
- inference of the SSL classifier at the paper's shape: latency at batch 1, throughput at batch 64;
- FLOPs per clip (torch.utils.flop_counter.FlopCounterMode: matmul / conv only, a lower bound) of a forward
  pass and of a training step (forward + backward), and the achieved GFLOP/s as a fraction of this
  machine's dense fp32 matmul rate, measured in the same run;
- the peer, MMAction2's ST-GCN++ (benchmarks/peer_stgcnpp.py in benchmarks/.venv-peer), at the same
  shapes, threads and environment, and our ratio to it.

    .venv/bin/python benchmarks/speed.py                 # full run (~10 min on 2 idle cores)
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .venv/bin/python benchmarks/speed.py
    .venv/bin/python benchmarks/speed.py --quick --no-peer --out /tmp/bench   # smoke test, meaningless numbers

Writes ``speed.json`` and ``speed.md`` to ``--out`` (default benchmarks/results). Run it on a quiet machine:
the load average at start is recorded so a busy run can be spotted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    HERE,
    count_flops,
    git_commit,
    machine_info,
    machine_markdown,
    matmul_gflops,
    now,
    summary,
    table,
    time_repeats,
    write_results,
)

from skeletonmae.config import load_config
from skeletonmae.models.build import build_classifier
from skeletonmae.models.skeletonmae import SkeletonMAE

NUM_CLASSES = 60  # NTU-60, as the peer's head
PEER_PYTHON = HERE / ".venv-peer" / "bin" / "python"
PEER_STAMP = HERE / ".venv-peer" / ".installed"

# name -> (config overrides, batch). Defaults of the config are the paper's (D = 64, L_D = 3, M = 3, P = 2).
SHAPES = {
    "paper": (["data.clip_len=64", "data.num_persons=2", "encoder.dim=64", "encoder.layers=3",
               "classifier.strl_layers=3"], 16),
    "demo": (["data.clip_len=32", "data.num_persons=2"], 32),
}


def clips(cfg, batch: int, in_channels: int, v: int = 17) -> torch.Tensor:
    """Random clips [N, P, T, V, C] with every person present in every frame (no zero rows)."""
    x = torch.randn(batch, cfg.data.num_persons, cfg.data.clip_len, v, in_channels) * 0.5
    return torch.where(x == 0, torch.full_like(x, 1e-3), x)


def bench_pretrain(cfg, batch: int, a) -> dict:
    in_channels = 2 + int(cfg.data.use_score)
    torch.manual_seed(0)
    model = SkeletonMAE(cfg.encoder, cfg.mae, in_channels).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.pretrain.lr, weight_decay=cfg.pretrain.weight_decay)
    gen = torch.Generator().manual_seed(0)
    x = clips(cfg, batch, in_channels)

    def forward_backward():
        loss = model(x, generator=gen)["loss"]
        loss.backward()

    def step():  # PretrainTask.training_step + optimiser + the EMA hook
        opt.zero_grad(set_to_none=True)
        forward_backward()
        opt.step()
        model.update_target()

    out = summary(time_repeats(step, a.steps, a.repeats, a.warmup), batch)
    opt.zero_grad(set_to_none=True)
    out["train_flops_per_clip"] = count_flops(forward_backward) / batch
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        out["forward_flops_per_clip"] = count_flops(lambda: model(x, generator=gen)) / batch
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


def build_ft(cfg, in_channels: int):
    torch.manual_seed(0)
    return build_classifier(cfg, in_channels, NUM_CLASSES)


def bench_finetune(cfg, batch: int, a) -> dict:
    in_channels = 2 + int(cfg.data.use_score)
    model = build_ft(cfg, in_channels).train()
    f = cfg.finetune
    opt = torch.optim.SGD(model.parameters(), lr=f.lr * batch / f.base_batch_size, momentum=f.momentum,
                          nesterov=f.nesterov, weight_decay=f.weight_decay)
    x = clips(cfg, batch, in_channels)
    y = torch.randint(0, NUM_CLASSES, (batch,))

    def forward_backward():
        loss = F.cross_entropy(model(x), y, label_smoothing=f.label_smoothing)
        loss.backward()

    def step():  # FinetuneTask.training_step + optimiser
        opt.zero_grad(set_to_none=True)
        forward_backward()
        opt.step()

    out = summary(time_repeats(step, a.steps, a.repeats, a.warmup), batch)
    opt.zero_grad(set_to_none=True)
    out["train_flops_per_clip"] = count_flops(forward_backward) / batch
    model.eval()
    with torch.no_grad():
        out["forward_flops_per_clip"] = count_flops(lambda: model(x)) / batch
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


def bench_inference(cfg, a) -> dict:
    in_channels = 2 + int(cfg.data.use_score)
    model = build_ft(cfg, in_channels).eval()
    out = {}
    with torch.inference_mode():
        for n, steps in ((1, a.infer_steps_b1), (a.infer_batch, a.infer_steps_bn)):
            x = clips(cfg, n, in_channels)
            s = summary(time_repeats(lambda x=x: model(x), steps, a.repeats, a.warmup), n)
            out[f"batch{n}"] = {"clips_per_s": s["items_per_s"], "ms_per_batch": s["ms_per_call"],
                                "ms_per_batch_best": 1e3 * n / s["items_per_s_best"], "repeats": s["repeats"]}
    return out


def ensure_peer(log: list[str]) -> str | None:
    """Build the peer venv if needed; None when ready, else why it is not."""
    if PEER_STAMP.is_file() and PEER_PYTHON.is_file():
        return None
    t0 = time.time()
    try:
        r = subprocess.run(["bash", str(HERE / "setup_peer.sh")], capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        return f"setup_peer.sh could not run: {type(e).__name__}: {e}"
    log.append(f"setup_peer.sh exit {r.returncode} after {time.time() - t0:.0f} s")
    if r.returncode != 0 or not PEER_STAMP.is_file():
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "is ignored" not in ln]
        return f"setup_peer.sh failed (exit {r.returncode}): " + "\n".join(lines[-25:])
    return None


def run_peer(cfg, batch: int, a, inference: bool) -> dict:
    cmd = [str(PEER_PYTHON), str(HERE / "peer_stgcnpp.py"), "--batch", str(batch),
           "--clip-len", str(cfg.data.clip_len), "--persons", str(cfg.data.num_persons),
           "--num-classes", str(NUM_CLASSES), "--threads", str(torch.get_num_threads()),
           "--steps", str(a.steps), "--repeats", str(a.repeats), "--warmup", str(a.warmup),
           "--infer-batch", str(a.infer_batch)]
    if not inference:
        cmd.append("--no-inference")
    try:  # same environment: OMP_NUM_THREADS, LD_PRELOAD (allocator) are inherited
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.peer_timeout, env=dict(os.environ))
    except (OSError, subprocess.SubprocessError) as e:
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}", "command": " ".join(cmd)}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-25:])
        return {"status": "failed", "reason": f"exit {r.returncode}: {tail}", "command": " ".join(cmd)}
    return {"status": "ok", **json.loads(lines[-1]), "command": " ".join(cmd)}


def achieved(row: dict, peak: float) -> None:
    """Achieved GFLOP/s of training (counted FLOPs x clips/s) and its share of the matmul rate."""
    g = row["train_flops_per_clip"] * row["clips_per_s"] / 1e9
    row["achieved_gflops"], row["fraction_of_matmul"] = g, g / peak


def markdown(report: dict) -> str:
    mm = report["matmul"]
    quick = "**QUICK MODE: tiny shapes, 1 repeat: these numbers mean nothing.**\n\n" if report["quick"] else ""
    s = ["# Speed (CPU, eager, fp32)",
         f"{quick}Written by `{report['command']}` at {report['time']} (commit {report['git']['commit'][:10]}"
         f"{', dirty' if report['git']['dirty'] else ''}) in {report['wall_s']:.0f} s.",
         machine_markdown(report["machine"]).strip(),
         f"Dense fp32 matmul ({mm['n']}x{mm['n']}): {mm['gflops']:.1f} GFLOP/s (median), {mm['gflops_best']:.1f} best.",
         "## Training step (forward + backward + optimiser step), clips/s, median over repeats"]
    rows = []
    for r in report["train"]:
        rows.append([r["model"], r["shape"], "x".join(map(str, r["input_shape"])), r["params"], r["clips_per_s"],
                     f"{r['clips_per_s_worst']:.3g}-{r['clips_per_s_best']:.3g}", r["forward_flops_per_clip"] / 1e9,
                     r["train_flops_per_clip"] / 1e9, r["achieved_gflops"], 100 * r["fraction_of_matmul"],
                     r.get("ratio_to_peer")])
    s.append(table(["model", "shape", "input N x P x T x V x C", "params", "clips/s", "range (worst-best)",
                    "fwd GFLOP/clip", "train GFLOP/clip", "achieved GFLOP/s", "% of matmul", "ours / peer"], rows))
    s.append("FLOPs: FlopCounterMode counts matmul / conv / bmm only (element-wise work, norms and activations "
             "count 0), so achieved GFLOP/s is a lower bound of the work done. The peer takes C = 3 (x, y, score) "
             "as in PYSKL, ours C = 2 (x, y) as in the paper. Our steps are the Lightning tasks' steps without "
             "the Trainer (no logging / hooks overhead), as is the peer's.")
    s.append("## Inference (SSL classifier and peer, eval mode, inference_mode)")
    rows = [[r["model"], r["shape"], b.removeprefix("batch"), r[b]["ms_per_batch"], r[b]["clips_per_s"]]
            for r in report["inference"] for b in r if b.startswith("batch")]
    s.append(table(["model", "shape", "batch", "ms / batch (median)", "clips/s"], rows))
    peer = report["peer"]
    s.append("## Peer")
    if peer["status"] == "ok":
        s.append(f"{peer['model']}: {peer['params']} parameters; {peer['versions']}; torch {peer['torch']}, "
                 f"{peer['threads']} threads, allocator {peer['allocator']}; run in benchmarks/.venv-peer.")
    else:
        s.append(f"Status: {peer['status']}. Reason:\n\n```\n{peer.get('reason', '')}\n```")
    return "\n\n".join(x.strip("\n") for x in s) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 1 repeat: a smoke test, not a measurement")
    ap.add_argument("--no-peer", action="store_true", help="skip the ST-GCN++ peer")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default / OMP_NUM_THREADS)")
    ap.add_argument("--steps", type=int, default=5, help="optimiser steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--infer-batch", type=int, default=64)
    ap.add_argument("--peer-timeout", type=float, default=3600)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    a.infer_steps_b1, a.infer_steps_bn = 20, 2
    shapes = dict(SHAPES)
    if a.quick:
        a.steps, a.repeats, a.warmup, a.infer_batch, a.infer_steps_b1, a.infer_steps_bn = 1, 1, 1, 4, 2, 1
        shapes = {"quick": (["data.clip_len=8", "data.num_persons=2", "encoder.dim=16", "encoder.layers=1",
                             "classifier.strl_layers=1", "classifier.head_hidden=16"], 2)}
    t_start = time.time()
    report = {"benchmark": "speed", "quick": a.quick, "time": now(), "command": " ".join([Path(sys.argv[0]).name,
              *(argv if argv is not None else sys.argv[1:])]), "git": git_commit(), "machine": machine_info(),
              "settings": {"steps_per_repeat": a.steps, "repeats": a.repeats, "warmup_steps": a.warmup,
                           "infer_batch": a.infer_batch}}
    print(machine_markdown(report["machine"]), end="", flush=True)
    report["matmul"] = matmul_gflops(256 if a.quick else 2048, repeats=1 if a.quick else 5)
    peak = report["matmul"]["gflops"]
    print(f"matmul {peak:.1f} GFLOP/s", flush=True)

    train, inference, cfgs = [], [], {}
    for shape, (overrides, batch) in shapes.items():
        base = ["demo"] if shape == "demo" else []
        cfg = cfgs[shape] = (load_config(base, overrides), batch)
        for name, fn in (("SkeletonMAE pre-training", bench_pretrain), ("SSL fine-tuning", bench_finetune)):
            r = fn(cfg[0], batch, a)
            row = {"model": name, "shape": shape, "batch": batch,
                   "input_shape": [batch, cfg[0].data.num_persons, cfg[0].data.clip_len, 17, 2],
                   "clips_per_s": r.pop("items_per_s"), "clips_per_s_best": r.pop("items_per_s_best"),
                   "clips_per_s_worst": r.pop("items_per_s_worst"), **r}
            achieved(row, peak)
            train.append(row)
            print(f"{name} [{shape}] {row['clips_per_s']:.2f} clips/s", flush=True)
    first = next(iter(shapes))
    inf = {"model": "SSL classifier", "shape": first, **bench_inference(cfgs[first][0], a)}
    inference.append(inf)
    print(f"inference {json.dumps(inf)}", flush=True)

    log: list[str] = []
    peer: dict = {"status": "skipped", "reason": "--no-peer"}
    if not a.no_peer:
        why = ensure_peer(log)
        peer = {"status": "unavailable", "reason": why, "log": log} if why else {"status": "ok", "log": log}
    if peer["status"] == "ok":
        for shape, (cfg, batch) in cfgs.items():
            r = run_peer(cfg, batch, a, inference=shape == first)
            if r["status"] != "ok":
                peer = {**peer, **r}
                break
            peer.update(model=r["model"], params=r["params"], versions=r["versions"], torch=r["machine"]["torch"],
                        threads=r["machine"]["torch_threads"], allocator=r["machine"]["allocator"])
            row = {"model": "ST-GCN++ (MMAction2, peer)", "shape": shape, "batch": batch,
                   "input_shape": r["input_shape"], "params": r["params"], **r["train"],
                   "train_flops_per_clip": r["train_flops_per_clip"],
                   "forward_flops_per_clip": r["forward_flops_per_clip"], "command": r["command"]}
            achieved(row, peak)
            for ours in train:
                if ours["shape"] == shape:
                    ours["ratio_to_peer"] = ours["clips_per_s"] / row["clips_per_s"]
            train.append(row)
            if "inference" in r:
                inference.append({"model": "ST-GCN++ (MMAction2, peer)", "shape": shape, **r["inference"]})
            print(f"peer [{shape}] {row['clips_per_s']:.2f} clips/s", flush=True)
    report.update(train=train, inference=inference, peer=peer, wall_s=time.time() - t_start)
    js, md = write_results(a.out, "speed", report, markdown(report))
    print(f"wrote {js} and {md}")
    return report


if __name__ == "__main__":
    main()
