"""Where a training step's time goes: the share of this machine's matmul rate each step reaches, its CPU time
by kind of operator (torch.profiler), and what torch.compile changes, at the paper's shape.

For SkeletonMAE pre-training and SSL fine-tuning (the steps of speed.py, T = 64, V = 17, P = 2, D = 64,
batch 16), with the threads of this process:

- achieved GFLOP/s (FlopCounterMode's matmul / conv FLOPs x steps/s) over the dense fp32 matmul rate, both
  timed in interleaved rounds (speed.interleave) so a load that comes and goes hits both alike;
- the operators' self CPU time over a few profiled steps, grouped: matmul / convolution, normalisation,
  activation, element-wise arithmetic and reductions, memory layout (copies, cat, permutes), other;
- with ``--compile``: the seconds the first compiled step takes (compilation), then eager and compiled steps in
  interleaved rounds, their ratio, and after how many steps compilation pays for itself.

    .venv/bin/python benchmarks/profile_step.py              # ~3 min on 2 idle cores
    .venv/bin/python benchmarks/profile_step.py --compile    # + torch.compile, ~5 min more (compilation)
    .venv/bin/python benchmarks/profile_step.py --quick --out /tmp/bench   # smoke test, meaningless numbers

Writes ``profile_step.json`` and ``profile_step.md`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import HERE, git_commit, machine_info, machine_markdown, now, table, write_results, written_by
from speed import QUICK_SHAPE, SHAPES, finetune_step, interleave, local, matmul_step, pretrain_step, rate
from torch.profiler import ProfilerActivity, profile

from skeletonmae.config import load_config

# operator (aten:: name without the prefix) -> kind; first match of a prefix wins, the rest is "other"
KINDS = (
    ("matmul / convolution", ("mm", "addmm", "bmm", "matmul", "linear", "mkldnn_convolution", "convolution",
                              "convolution_backward", "_convolution")),
    ("normalisation", ("native_batch_norm", "native_batch_norm_backward", "batch_norm", "native_layer_norm",
                       "native_layer_norm_backward")),
    ("activation", ("_prelu_kernel", "_prelu_kernel_backward", "prelu", "relu", "relu_", "threshold_backward",
                    "clamp_min", "max_pool2d_with_indices", "max_pool2d_with_indices_backward", "gelu", "elu")),
    ("element-wise / reductions", ("mul", "add", "sub", "div", "where", "sum", "mean", "add_", "mul_", "addcmul_",
                                   "addcdiv_", "sqrt", "lerp_", "neg", "exp", "log_softmax", "ne", "any", "var",
                                   "pow", "rsqrt", "abs", "sign", "_foreach_add_", "_foreach_mul_",
                                   "_foreach_addcmul_", "_foreach_addcdiv_", "_foreach_lerp_", "_foreach_sqrt",
                                   "_foreach_div_", "linalg_vector_norm", "clamp", "fill_", "zero_")),
    ("memory layout", ("copy_", "cat", "clone", "contiguous", "_to_copy", "index", "index_select", "gather",
                       "scatter_add_", "expand", "permute", "reshape", "view", "as_strided", "empty",
                       "empty_strided", "_unsafe_view", "t", "transpose", "unsqueeze", "select", "slice")),
)
KIND_OF = {op: kind for kind, ops in KINDS for op in ops}


def kind_of(name: str) -> str:
    return KIND_OF.get(name.removeprefix("aten::"), "other") if name.startswith("aten::") else "other"


def profile_ops(step, steps: int) -> tuple[dict[str, float], list[list]]:
    """Self CPU ms per step by kind, and the 12 costliest operators (name, kind, ms per step, calls per step).
    Only aten:: operators count, so nothing is counted twice."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    by_kind: dict[str, float] = {}
    ops = []
    for e in prof.key_averages():
        if not e.key.startswith("aten::"):
            continue
        ms = e.self_cpu_time_total / 1e3 / steps
        by_kind[kind_of(e.key)] = by_kind.get(kind_of(e.key), 0.0) + ms
        ops.append([e.key, kind_of(e.key), ms, e.count / steps])
    ops.sort(key=lambda r: -r[2])
    return by_kind, ops[:12]


def share_of_matmul(step, facts: dict, batch: int, a) -> dict:
    """Steps/s of ``step`` and the matmul rate in interleaved rounds; the achieved share per round."""
    blocks = {"step": local(step), "matmul": local(matmul_step(a.matmul_n))}
    rounds = interleave(blocks, {"step": a.step_repeats, "matmul": a.matmul_repeats}, a.rounds)
    mm_flops = 2 * a.matmul_n**3
    shares = [rate(r["step"], batch * facts["train_flops_per_clip"]) / rate(r["matmul"], mm_flops) for r in rounds]
    return {"clips_per_s": statistics.median(rate(r["step"], batch) for r in rounds),
            "matmul_gflops": statistics.median(rate(r["matmul"], mm_flops) / 1e9 for r in rounds),
            "fraction_of_matmul": statistics.median(shares), "fraction_per_round": shares,
            "cores_used": statistics.median(r["step"]["cpu_s"] / r["step"]["wall_s"] for r in rounds)}


def compile_gain(builder, cfg, batch: int, eager_step, a) -> dict:
    """Compilation seconds (the first compiled step), then eager vs compiled steps/s in interleaved rounds."""
    torch._dynamo.reset()
    compiled, _ = builder(cfg, batch, compiled=True)
    t0 = time.perf_counter()
    compiled()
    first = time.perf_counter() - t0
    rounds = interleave({"eager": local(eager_step), "compiled": local(compiled)},
                        {"eager": a.step_repeats, "compiled": a.step_repeats}, a.rounds)
    eager_s = statistics.median(r["eager"]["wall_s"] / r["eager"]["steps"] for r in rounds)
    comp_s = statistics.median(r["compiled"]["wall_s"] / r["compiled"]["steps"] for r in rounds)
    gain = eager_s - comp_s
    return {"first_step_s": first, "eager_s_per_step": eager_s, "compiled_s_per_step": comp_s,
            "speedup": eager_s / comp_s, "pays_after_steps": (first - comp_s) / gain if gain > 0 else None}


def markdown(report: dict) -> str:
    quick = "**QUICK MODE: tiny shapes: these numbers mean nothing.**\n\n" if report["quick"] else ""
    s = ["# Where a training step's time goes (CPU, fp32)",
         quick + written_by(report, f"{report['wall_s']:.0f} s"),
         machine_markdown(report["machine"]).strip(),
         "## Share of the matmul rate (interleaved rounds, medians)"]
    rows = [[r["step"], r["shape"], r["share"]["clips_per_s"], r["share"]["matmul_gflops"],
             100 * r["share"]["fraction_of_matmul"], r["share"]["cores_used"]] for r in report["steps"]]
    s.append(table(["step", "shape", "clips/s", "matmul GFLOP/s", "% of matmul", "cores used"], rows))
    s.append("## Self CPU time per step by kind of operator (torch.profiler)")
    kinds = [k for k, _ in KINDS] + ["other"]
    rows = []
    for r in report["steps"]:
        total = sum(r["ms_by_kind"].values())
        rows.append([r["step"], total] + [f"{100 * r['ms_by_kind'].get(k, 0) / total:.0f} %" for k in kinds])
    s.append(table(["step", "ms / step (profiled)", *kinds], rows))
    for r in report["steps"]:
        s.append(f"### {r['step']}: the 12 costliest operators")
        s.append(table(["operator", "kind", "ms / step", "calls / step"], r["top_ops"]))
    if any("compile" in r for r in report["steps"]):
        s.append("## torch.compile (default mode, inductor) against eager, interleaved rounds")
        rows = [[r["step"], c["first_step_s"], 1e3 * c["eager_s_per_step"], 1e3 * c["compiled_s_per_step"],
                 c["speedup"], "never" if c["pays_after_steps"] is None else f"{c['pays_after_steps']:.0f}"]
                for r in report["steps"] if (c := r.get("compile"))]
        s.append(table(["step", "first compiled step, s", "eager ms / step", "compiled ms / step", "speed-up",
                        "compilation pays after (steps)"], rows))
    return "\n\n".join(x.strip("\n") for x in s) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds: a smoke test, not a measurement")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile against eager")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default / OMP_NUM_THREADS)")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    overrides, batch = SHAPES["paper"]
    a.matmul_n, a.matmul_repeats, a.step_repeats, profiled = 1024, 8, 2, 3
    if a.quick:
        (overrides, batch), a.rounds, a.matmul_n, a.matmul_repeats, profiled = QUICK_SHAPE, 2, 128, 2, 1
    t_start = time.time()
    report = {"benchmark": "profile_step", "quick": a.quick, "time": now(), "git": git_commit(),
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine_info(), "settings": {"rounds": a.rounds, "matmul_n": a.matmul_n, "batch": batch,
                                                      "overrides": overrides, "profiled_steps": profiled}}
    print(machine_markdown(report["machine"]), end="", flush=True)
    cfg = load_config([], overrides)
    report["steps"] = []
    for name, builder in (("SkeletonMAE pre-training", pretrain_step), ("SSL fine-tuning", finetune_step)):
        print(name, flush=True)
        step, facts = builder(cfg, batch)
        for _ in range(3):  # warm-up
            step()
        by_kind, top = profile_ops(step, profiled)
        row = {"step": name, "shape": "quick" if a.quick else "paper", **facts, "ms_by_kind": by_kind,
               "top_ops": top, "share": share_of_matmul(step, facts, batch, a)}
        if a.compile:
            row["compile"] = compile_gain(builder, cfg, batch, step, a)
        report["steps"].append(row)
        print(f"  {100 * row['share']['fraction_of_matmul']:.0f} % of matmul", flush=True)
    report["wall_s"] = time.time() - t_start
    js, md = write_results(a.out, "profile_step", report, markdown(report))
    print(f"wrote {js} and {md}")
    return report


if __name__ == "__main__":
    main()
