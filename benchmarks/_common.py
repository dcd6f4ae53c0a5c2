"""Shared by the benchmark scripts (and the peer runner, which runs in its own venv): machine facts,
timing, results files. Needs only the standard library and torch, never skeletonmae.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loaded_allocator() -> str:
    """The malloc actually mapped into this process (tcmalloc / jemalloc / mimalloc), else glibc."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    for name in ("tcmalloc", "jemalloc", "mimalloc"):
        if name in maps:
            return name
    return "glibc"


def machine_info() -> dict:
    """What a number depends on: CPU, cores, torch and its threads, the allocator, the load at start."""
    import torch

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "LD_PRELOAD": os.environ.get("LD_PRELOAD", ""),
        "allocator": loaded_allocator(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
    }


def git_commit() -> dict:
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")




def timed_block(step: Callable[[], object], steps: int) -> dict:
    """One round's block: ``steps`` calls of ``step``, their wall and process CPU seconds, and the load average
    (1 min) when the block ended. CPU time counts every thread of this process, so cpu_s / wall_s shows how
    many cores the block actually got."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"steps": steps, "wall_s": wall, "cpu_s": cpu, "load1": os.getloadavg()[0]}


def serve_blocks(blocks: dict[str, Callable[[], object]], info: dict) -> None:
    """The other side of an interleaved benchmark run in another process: print ``info`` as one JSON line,
    then answer each stdin line ``NAME STEPS`` with one JSON line of :func:`timed_block` of ``blocks[NAME]``,
    until ``quit`` or the end of stdin. An unknown name is answered with ``{"error": ...}``."""
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        name, steps = words[0], int(words[1]) if len(words) > 1 else 1
        reply = timed_block(blocks[name], steps) if name in blocks else {"error": f"unknown block {name!r}"}
        print(json.dumps(reply), flush=True)






def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as torch's FlopCounterMode counts them (matmul / conv / bmm / SDPA only:
    element-wise ops, norms and activations count 0, so this is a lower bound for a model's work)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def write_results(out_dir: Path, name: str, report: dict, markdown: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{name}.json", out_dir / f"{name}.md"
    js.write_text(json.dumps(report, indent=1) + "\n")
    md.write_text(markdown)
    return js, md


def written_by(report: dict, took: str) -> str:
    """The results page's provenance line: command, time, commit (dirty or not) and how long the run took."""
    git = report["git"]
    return (f"Written by `{report['command']}` at {report['time']} (commit {git['commit'][:10]}"
            f"{', dirty' if git['dirty'] else ''}) in {took}.")


def machine_markdown(machine: dict) -> str:
    m = machine
    return (f"Machine: {m['cpu_model']}, {m['cores']} cores ({m['cores_usable']} usable), torch {m['torch']}, "
            f"{m['torch_threads']} torch threads, allocator {m['allocator']}"
            f" (LD_PRELOAD={m['LD_PRELOAD'] or '-'}), load average at start {m['load_average_at_start']}.\n")


def table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
