"""Speed: training-step throughput, inference latency / throughput and FLOPs, side by side with the peer, in
interleaved rounds so that the ratio survives a busy machine.

What is measured (eager PyTorch, fp32, CPU, the threads and allocator of this process):

- training throughput (clips/s) of one optimiser step = forward + backward + step, for SkeletonMAE
  pre-training (SkeletonMAE, Adam) and SSL fine-tuning (build_classifier, SGD + label smoothing), at
  the paper's shapes (T = 64, V = 17, P = 2 persons both present, D = 64, L_D = 3, M = 3, batch 16) and the
  demo's (T = 32, P = 2, batch 32);
- inference of the SSL classifier at the paper's shape: latency at batch 1, throughput at batch 64;
- the peer, MMAction2's ST-GCN++ (benchmarks/peer_stgcnpp.py --serve in benchmarks/.venv-peer, a process of
  its own), at the same shapes, threads and environment;
- this machine's dense fp32 matmul rate, and FLOPs per clip (torch.utils.flop_counter.FlopCounterMode:
  matmul / conv only, a lower bound), so each step's achieved GFLOP/s is a share of the matmul rate.

How: every timed thing is a *block* of about ``--block-seconds`` (ours, the peer's, the matmul's, in turns:
ABCAB C...). ``--rounds`` rounds run each block once, so a load that comes and goes hits all of them alike.
Each round gives a rate per block, a ratio ours / peer and a share of the matmul rate measured in that
round; a row reports their medians, and the ratio's spread (interquartile range / median). When the spread
exceeds ``--tolerance`` the rounds disagree and the table says so instead of printing a ratio. Each block
records its process CPU time and the load average, so a run shows how many cores it actually got.

    .venv/bin/python benchmarks/speed.py                 # full run (~4 min on 2 idle cores)
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .venv/bin/python benchmarks/speed.py
    .venv/bin/python benchmarks/speed.py --busy-cores 1 --name speed_busy   # while a busy loop holds a core
    .venv/bin/python benchmarks/speed.py --quick --no-peer --out /tmp/bench   # smoke test, meaningless numbers

Writes ``NAME.json`` and ``NAME.md`` (``--name``, default speed) to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    HERE,
    count_flops,
    git_commit,
    machine_info,
    machine_markdown,
    now,
    table,
    timed_block,
    write_results,
    written_by,
)

from skeletonmae.config import load_config
from skeletonmae.models.build import build_classifier
from skeletonmae.models.skeletonmae import SkeletonMAE

NUM_CLASSES = 60  # NTU-60, as the peer's head
PEER_PYTHON = HERE / ".venv-peer" / "bin" / "python"
PEER_STAMP = HERE / ".venv-peer" / ".installed"
PEER = "ST-GCN++ (MMAction2, peer)"
# block name -> model name of the rows
MODELS = {"pretrain": "SkeletonMAE pre-training", "finetune": "SSL fine-tuning", "peer": PEER}

# name -> (config overrides, batch). Defaults of the config are the paper's (D = 64, L_D = 3, M = 3, P = 2).
SHAPES = {
    "paper": (["data.clip_len=64", "data.num_persons=2", "encoder.dim=64", "encoder.layers=3",
               "classifier.strl_layers=3"], 16),
    "demo": (["data.clip_len=32", "data.num_persons=2"], 32),
}
QUICK_SHAPE = (["data.clip_len=8", "data.num_persons=2", "encoder.dim=16", "encoder.layers=1",
                "classifier.strl_layers=1", "classifier.head_hidden=16"], 2)

Block = Callable[[int], dict]  # steps -> timed_block's record


def clips(cfg, batch: int, in_channels: int, v: int = 17) -> torch.Tensor:
    """Random clips [N, P, T, V, C] with every person present in every frame (no zero rows)."""
    x = torch.randn(batch, cfg.data.num_persons, cfg.data.clip_len, v, in_channels) * 0.5
    return torch.where(x == 0, torch.full_like(x, 1e-3), x)


def build_ft(cfg, in_channels: int):
    torch.manual_seed(0)
    return build_classifier(cfg, in_channels, NUM_CLASSES)


def pretrain_step(cfg, batch: int, compiled: bool = False) -> tuple[Callable[[], None], dict]:
    """PretrainTask's training step + Adam + the EMA hook, and the model's facts (parameters, FLOPs).
    ``compiled``: the step runs the model through torch.compile (its first call compiles)."""
    in_channels = 2 + int(cfg.data.use_score)
    torch.manual_seed(0)
    model = SkeletonMAE(cfg.encoder, cfg.mae, in_channels).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.pretrain.lr, weight_decay=cfg.pretrain.weight_decay)
    gen = torch.Generator().manual_seed(0)
    x = clips(cfg, batch, in_channels)
    run = torch.compile(model) if compiled else model

    def loss(m):
        return m(x, generator=gen)["loss"]

    def step():
        opt.zero_grad(set_to_none=True)
        loss(run).backward()
        opt.step()
        model.update_target()

    facts = {"train_flops_per_clip": count_flops(lambda: loss(model).backward()) / batch}  # FLOPs: eager
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        facts["forward_flops_per_clip"] = count_flops(lambda: model(x, generator=gen)) / batch
    facts["params"] = sum(p.numel() for p in model.parameters())
    return step, facts


def finetune_step(cfg, batch: int, compiled: bool = False) -> tuple[Callable[[], None], dict]:
    """FinetuneTask's training step (label smoothing) + SGD, and the model's facts (parameters, FLOPs).
    ``compiled``: the step runs the model through torch.compile (its first call compiles)."""
    in_channels = 2 + int(cfg.data.use_score)
    model = build_ft(cfg, in_channels).train()
    f = cfg.finetune
    opt = torch.optim.SGD(model.parameters(), lr=f.lr * batch / f.base_batch_size, momentum=f.momentum,
                          nesterov=f.nesterov, weight_decay=f.weight_decay)
    x = clips(cfg, batch, in_channels)
    y = torch.randint(0, NUM_CLASSES, (batch,))
    run = torch.compile(model) if compiled else model

    def loss(m):
        return F.cross_entropy(m(x), y, label_smoothing=f.label_smoothing)

    def step():
        opt.zero_grad(set_to_none=True)
        loss(run).backward()
        opt.step()

    facts = {"train_flops_per_clip": count_flops(lambda: loss(model).backward()) / batch}  # FLOPs: eager
    opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        facts["forward_flops_per_clip"] = count_flops(lambda: model(x)) / batch
    model.train()
    facts["params"] = sum(p.numel() for p in model.parameters())
    return step, facts


def inference_step(cfg, batch: int) -> Callable[[], None]:
    """One eval-mode forward of the SSL classifier at ``batch`` clips, under inference_mode."""
    model = build_ft(cfg, 2 + int(cfg.data.use_score)).eval()
    x = clips(cfg, batch, 2 + int(cfg.data.use_score))

    def step():
        with torch.inference_mode():
            model(x)

    return step


def matmul_step(n: int) -> Callable[[], None]:
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    return lambda: torch.mm(a, b, out=out)


def local(step: Callable[[], None]) -> Block:
    return lambda steps: timed_block(step, steps)


class PeerProcess:
    """The peer in a process of its own (peer_stgcnpp.py --serve): ``info`` about the model, then one timed
    block per :meth:`block` call. Lines that are not JSON (library warnings) are skipped."""

    def __init__(self, cfg, batch: int, a):
        self.command = [str(PEER_PYTHON), str(HERE / "peer_stgcnpp.py"), "--serve", "--batch", str(batch),
                        "--clip-len", str(cfg.data.clip_len), "--persons", str(cfg.data.num_persons),
                        "--num-classes", str(NUM_CLASSES), "--threads", str(torch.get_num_threads()),
                        "--infer-batch", str(a.infer_batch)]
        self.timeout = a.peer_timeout
        self.stderr = tempfile.TemporaryFile(mode="w+")
        # same environment: OMP_NUM_THREADS and LD_PRELOAD (the allocator) are inherited
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=dict(os.environ))
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.info = self._reply()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _reply(self) -> dict:
        while True:
            try:
                line = self.lines.get(timeout=self.timeout)
            except queue.Empty:
                raise RuntimeError(f"the peer gave no answer in {self.timeout:.0f} s") from None
            if not line:
                self.stderr.seek(0)
                tail = "\n".join(self.stderr.read().strip().splitlines()[-25:])
                raise RuntimeError(f"the peer exited ({self.proc.wait()}):\n{tail}")
            if line.startswith("{"):
                return json.loads(line)

    def block(self, name: str) -> Block:
        def run(steps: int) -> dict:
            self.proc.stdin.write(f"{name} {steps}\n")
            self.proc.stdin.flush()
            reply = self._reply()
            if "error" in reply:
                raise RuntimeError(f"the peer refused block {name!r}: {reply['error']}")
            return reply

        return run

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.stderr.close()


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


def steps_per_block(block: Block, seconds: float, warmup: int) -> int:
    """Steps that take about ``seconds``, from the last of ``warmup`` untimed single steps (at least 1)."""
    rec = None
    for _ in range(max(1, warmup)):
        rec = block(1)
    return max(1, round(seconds / max(rec["wall_s"], 1e-6)))


def interleave(blocks: dict[str, Block], steps: dict[str, int], rounds: int) -> list[dict[str, dict]]:
    """``rounds`` rounds; each runs every block once, in the same order: one record per block and round."""
    out = []
    for r in range(rounds):
        out.append({name: block(steps[name]) for name, block in blocks.items()})
        print(f"  round {r + 1}/{rounds} " + " ".join(f"{n} {rec['wall_s']:.2f}s" for n, rec in out[-1].items()),
              flush=True)
    return out


def rate(rec: dict, items_per_step: float) -> float:
    return items_per_step * rec["steps"] / rec["wall_s"]


def spread(values: list[float]) -> dict:
    """Median, range and the interquartile range relative to the median of per-round values."""
    med = statistics.median(values)
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [med] * 3
    return {"median": med, "min": min(values), "max": max(values), "iqr_over_median": (q[2] - q[0]) / med,
            "per_round": values}


def row_of(name: str, shape: str, rounds: list[dict[str, dict]], batch: int, facts: dict,
           matmul_flops: float) -> dict:
    """Clips/s, cores used and share of the matmul rate of one block over the rounds (medians)."""
    recs = [r[name] for r in rounds]
    clips_s = [rate(x, batch) for x in recs]
    shares = [rate(x, batch) * facts["train_flops_per_clip"] / rate(r["matmul"], matmul_flops)
              for x, r in zip(recs, rounds, strict=True)]
    med = statistics.median(clips_s)
    return {"model": MODELS[name], "shape": shape, "batch": batch, **facts, "clips_per_s": med,
            "clips_per_s_best": max(clips_s), "clips_per_s_worst": min(clips_s),
            "cores_used": statistics.median(x["cpu_s"] / x["wall_s"] for x in recs),
            "achieved_gflops": med * facts["train_flops_per_clip"] / 1e9,
            "fraction_of_matmul": statistics.median(shares), "rounds": len(recs)}


def ratio_to_peer(ours: str, rounds: list[dict[str, dict]], tolerance: float) -> dict:
    """Ours / peer clips/s per round (same batch both), its median and spread, and whether the rounds agree."""
    s = spread([rate(r[ours], 1) / rate(r["peer"], 1) for r in rounds])
    return {**s, "tolerance": tolerance, "agree": s["iqr_over_median"] <= tolerance}


def markdown(report: dict) -> str:
    quick = "**QUICK MODE: tiny shapes, 2 short rounds: these numbers mean nothing.**\n\n" if report["quick"] else ""
    st = report["settings"]
    load = report["load1_during_run"]
    s = ["# Speed (CPU, eager, fp32)",
         quick + written_by(report, f"{report['wall_s']:.0f} s"),
         machine_markdown(report["machine"]).strip(),
         f"{st['rounds']} interleaved rounds per shape, blocks of ~{st['block_seconds']} s (ours, the peer and a "
         f"{st['matmul_n']}x{st['matmul_n']} fp32 matmul in turns), {st['busy_cores']} busy-loop process(es) "
         f"started for the run; load average (1 min) during the run "
         f"{load[0]:.2f}-{load[1]:.2f}. Dense fp32 matmul: {report['matmul_gflops']:.1f} GFLOP/s (median of rounds).",
         "## Training step (forward + backward + optimiser step), clips/s, median over rounds"]
    rows = []
    for r in report["train"]:
        ratio = r.get("ratio_to_peer")
        if ratio is None:
            cell = spread_cell = None
        else:
            spread_cell = f"{100 * ratio['iqr_over_median']:.0f} %"
            cell = f"{ratio['median']:.3g}" if ratio["agree"] else \
                f"rounds disagree ({spread_cell} > {100 * ratio['tolerance']:.0f} %)"
        rows.append([r["model"], r["shape"], "x".join(map(str, r["input_shape"])), r["params"], r["clips_per_s"],
                     f"{r['clips_per_s_worst']:.3g}-{r['clips_per_s_best']:.3g}", r["cores_used"],
                     r["forward_flops_per_clip"] / 1e9, r["train_flops_per_clip"] / 1e9, r["achieved_gflops"],
                     100 * r["fraction_of_matmul"], cell, spread_cell])
    s.append(table(["model", "shape", "input N x P x T x V x C", "params", "clips/s", "range (worst-best)",
                    "cores used", "fwd GFLOP/clip", "train GFLOP/clip", "achieved GFLOP/s", "% of matmul",
                    "ours / peer", "ratio spread (IQR / median)"], rows))
    s.append("Each round gives a rate per block; `% of matmul` divides the achieved GFLOP/s by the matmul rate of "
             "the same round, `ours / peer` the two rates of the same round. FLOPs: FlopCounterMode counts "
             "matmul / conv / bmm only (element-wise work, norms and activations count 0), so achieved GFLOP/s "
             "is a lower bound of the work done. The peer takes C = 3 (x, y, score) as in PYSKL, ours C = 2 "
             "(x, y) as in the paper. Our steps are the Lightning tasks' steps without the Trainer (no logging "
             "/ hooks overhead), as is the peer's. `cores used` = process CPU time / wall time of the blocks.")
    s.append("## Inference (SSL classifier and peer, eval mode, inference_mode), median over rounds")
    rows = [[r["model"], r["shape"], r["batch"], r["ms_per_batch"], r["clips_per_s"]] for r in report["inference"]]
    s.append(table(["model", "shape", "batch", "ms / batch", "clips/s"], rows))
    peer = report["peer"]
    s.append("## Peer")
    if peer["status"] == "ok":
        s.append(f"{peer['model']}: {peer['params']} parameters; {peer['versions']}; torch {peer['torch']}, "
                 f"{peer['threads']} threads, allocator {peer['allocator']}; run in benchmarks/.venv-peer.")
    else:
        s.append(f"Status: {peer['status']}. Reason:\n\n```\n{peer.get('reason', '')}\n```")
    return "\n\n".join(x.strip("\n") for x in s) + "\n"


def measure_shape(shape: str, overrides: list[str], batch: int, first: bool, peer: dict, a) -> tuple[list, list, list]:
    """Interleaved rounds of one shape: training rows, inference rows and the raw rounds."""
    cfg = load_config(["demo"] if shape == "demo" else [], overrides)
    steps = {"pretrain": pretrain_step(cfg, batch), "finetune": finetune_step(cfg, batch)}
    blocks: dict[str, Block] = {name: local(step) for name, (step, _) in steps.items()}
    blocks["matmul"] = local(matmul_step(a.matmul_n))
    if first:
        blocks["infer1"] = local(inference_step(cfg, 1))
        blocks["inferN"] = local(inference_step(cfg, a.infer_batch))
    proc = None
    if peer["status"] == "ok":
        try:
            proc = PeerProcess(cfg, batch, a)
        except (OSError, RuntimeError) as e:
            peer.update(status="failed", reason=str(e))
    if proc is not None:
        info = proc.info
        peer.update(model=info["model"], params=info["params"], versions=info["versions"],
                    torch=info["machine"]["torch"], threads=info["machine"]["torch_threads"],
                    allocator=info["machine"]["allocator"], command=" ".join(proc.command))
        blocks["peer"] = proc.block("train")
        if first:
            blocks["peer_infer1"], blocks["peer_inferN"] = proc.block("infer1"), proc.block("inferN")
    try:
        per_block = {name: steps_per_block(b, a.block_seconds, a.warmup) for name, b in blocks.items()}
        rounds = interleave(blocks, per_block, a.rounds)
    finally:
        if proc is not None:
            proc.close()
    matmul_flops = 2 * a.matmul_n**3
    shape_in = [batch, cfg.data.num_persons, cfg.data.clip_len, 17]
    train = [{**row_of(name, shape, rounds, batch, facts, matmul_flops), "input_shape": [*shape_in, 2]}
             for name, (_, facts) in steps.items()]
    if proc is not None:
        facts = {k: proc.info[k] for k in ("params", "train_flops_per_clip", "forward_flops_per_clip")}
        for row, name in zip(train, steps, strict=True):
            row["ratio_to_peer"] = ratio_to_peer(name, rounds, a.tolerance)
        train.append({**row_of("peer", shape, rounds, batch, facts, matmul_flops),
                      "input_shape": proc.info["input_shape"]})
    inference = []
    for prefix, model in (("", "SSL classifier"), ("peer_", PEER)):
        for n, tag in ((1, "infer1"), (a.infer_batch, "inferN")):
            name = prefix + tag
            if name in blocks:
                ms = statistics.median(1e3 * x[name]["wall_s"] / x[name]["steps"] for x in rounds)
                inference.append({"model": model, "shape": shape, "batch": n, "ms_per_batch": ms,
                                  "clips_per_s": 1e3 * n / ms})
    return train, inference, rounds


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds: a smoke test, not a measurement")
    ap.add_argument("--no-peer", action="store_true", help="skip the ST-GCN++ peer")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default / OMP_NUM_THREADS)")
    ap.add_argument("--rounds", type=int, default=12, help="interleaved rounds per shape")
    ap.add_argument("--block-seconds", type=float, default=1.0, help="about how long each timed block runs")
    ap.add_argument("--warmup", type=int, default=3, help="untimed single steps of each block first")
    ap.add_argument("--tolerance", type=float, default=0.15,
                    help="largest ratio spread (interquartile range / median over rounds) still reported")
    ap.add_argument("--infer-batch", type=int, default=64)
    ap.add_argument("--peer-timeout", type=float, default=600, help="seconds to wait for one answer of the peer")
    ap.add_argument("--busy-cores", type=int, default=0,
                    help="start this many busy-loop processes for the run (to measure on a loaded machine)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--name", default="speed", help="results file names: NAME.json and NAME.md")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    a.matmul_n = 1024
    shapes = dict(SHAPES)
    if a.quick:
        a.rounds, a.block_seconds, a.warmup, a.infer_batch, a.matmul_n = 2, 0.02, 1, 4, 128
        shapes = {"quick": QUICK_SHAPE}
    t_start = time.time()
    report = {"benchmark": "speed", "quick": a.quick, "time": now(), "command": " ".join([Path(sys.argv[0]).name,
              *(argv if argv is not None else sys.argv[1:])]), "git": git_commit(), "machine": machine_info(),
              "settings": {"rounds": a.rounds, "block_seconds": a.block_seconds, "warmup_steps": a.warmup,
                           "tolerance": a.tolerance, "infer_batch": a.infer_batch, "matmul_n": a.matmul_n,
                           "busy_cores": a.busy_cores}}
    print(machine_markdown(report["machine"]), end="", flush=True)

    log: list[str] = []
    peer: dict = {"status": "skipped", "reason": "--no-peer"}
    if not a.no_peer:
        why = ensure_peer(log)
        peer = {"status": "unavailable", "reason": why, "log": log} if why else {"status": "ok", "log": log}
    train, inference, all_rounds = [], [], {}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy_cores)]
    try:
        for i, (shape, (overrides, batch)) in enumerate(shapes.items()):
            print(f"shape {shape}", flush=True)
            t, inf, all_rounds[shape] = measure_shape(shape, overrides, batch, i == 0, peer, a)
            train += t
            inference += inf
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    loads = [rec["load1"] for rounds in all_rounds.values() for r in rounds for rec in r.values()]
    rates = [rate(r["matmul"], 2 * a.matmul_n**3) / 1e9 for rounds in all_rounds.values() for r in rounds]
    report.update(train=train, inference=inference, peer=peer, matmul_gflops=statistics.median(rates),
                  load1_during_run=[min(loads), max(loads)], rounds=all_rounds, wall_s=time.time() - t_start)
    js, md = write_results(a.out, a.name, report, markdown(report))
    for r in train:
        ratio = r.get("ratio_to_peer")
        text = "" if ratio is None else (f", ours/peer {ratio['median']:.3g} (spread "
                                         f"{100 * ratio['iqr_over_median']:.0f} %"
                                         f"{'' if ratio['agree'] else ', rounds disagree'})")
        print(f"{r['model']} [{r['shape']}] {r['clips_per_s']:.3g} clips/s, {100 * r['fraction_of_matmul']:.0f} % "
              f"of matmul{text}")
    print(f"wrote {js} and {md}")
    return report


if __name__ == "__main__":
    main()
