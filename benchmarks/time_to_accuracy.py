"""Time to accuracy: test top-1 against training CPU-minutes, our best recipe against the peer ST-GCN++.

A user picks a model by the accuracy one unit of compute buys. This trains, on the same annotation pickles,
machine, threads and CPU budget:

- ours: ``skeletonmae finetune --config DATASET`` (the dataset's packaged recipe, chosen on validation, from the
  packaged pre-trained encoder), run through the package (``run_finetune``) with a Lightning callback that reads
  the clock and scores the test split after ~``--evals`` evenly spaced epochs;
- the peer: MMAction2 1.2.0's ST-GCN++ with PYSKL's joint-stream pipeline (benchmarks/peer_train.py, in
  benchmarks/.venv-peer): clip_len 100, 2 persons, batch 16, lr 0.1 x 16 / 128, cosine to 0; its length in steps
  is set from its measured step time so that its schedule ends inside the budget (rule in peer_train.py).

Datasets (defaults): Penn Action (2D, 13 joints mapped to COCO-17 for both models), JHMDB split 1 (2D, 15 joints
mapped to COCO-17), NW-UCLA cross-view (3D, the 20 Kinect joints: the peer's graph is built from our kinect20
bones). Budgets B (training CPU-minutes, the same for both models): Penn Action 12, JHMDB 6, NW-UCLA 10: they
hold our recipes with room to spare and about one PYSKL epoch of the peer, and keep the whole run under an hour
of wall time on 2 cores (the peer's test alone costs ~20 CPU-minutes: 100 frames x 2 persons x 5 clips).

Fairness: every training process has 1 torch thread (``--threads``), OMP_NUM_THREADS the same, reads its data in
the process (no loader workers) and is pinned to one core of its own (taskset); two run at a time, one per core
(a queue of six jobs). The x-axis is the training process's CPU time (user + system, from its start: imports,
data loading and model building included), evaluation excluded, so load from other jobs on the machine does not
move it. Scoring the test split at checkpoints measures the curve; it chooses nothing (our recipe was chosen on
validation before, the peer's is PYSKL's). Test clips per sample: ours 2 (its recipe); the peer 1 halfway and 5
at the end (PYSKL tests with 10; 5 keeps the run short): its test costs ~10x ours per sample.

    PYTHONPATH=src .venv/bin/python benchmarks/time_to_accuracy.py             # ~50 min of wall time on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/time_to_accuracy.py --quick     # smoke test, < 60 s
    PYTHONPATH=src .venv/bin/python benchmarks/time_to_accuracy.py --datasets jhmdb14 --budget jhmdb14=10

Writes ``time_to_accuracy.json`` (every point, budgets, commands, git commit, machine, load averages),
``time_to_accuracy.md`` and ``time_to_accuracy.png`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from _clock import CpuClock, evenly_spaced
from _common import HERE, REPO, git_commit, machine_info, machine_markdown, now, table, write_results, written_by
from lightning.pytorch.callbacks import Callback

from skeletonmae.config import load_config
from skeletonmae.data.dataset import SkeletonData, collect
from skeletonmae.skeleton import get_layout, joint_mapping
from skeletonmae.tasks.finetune import run_finetune

PEER_PYTHON = HERE / ".venv-peer" / "bin" / "python"
PEER_STAMP = HERE / ".venv-peer" / ".installed"
BUDGETS = {"penn_action": 12.0, "jhmdb14": 6.0, "nw_ucla": 10.0}
QUICK_BUDGET, QUICK_CLIPS = 0.05, 16
# The smoke test: one epoch of a few batches, a few test clips (ours: 2 batches of 8; the peer: 16 clips of 20 frames)
OURS_QUICK = ["finetune.epochs=1", "finetune.batch_size=8", "finetune.milestones=[1, 1]",
              "trainer.limit_train_batches=2"]
PEER_QUICK = ["--max-clips", str(QUICK_CLIPS), "--clip-len", "20", "--calib-steps", "1", "--test-clips", "2"]


# ---------------------------------------------------------------- ours (a worker process, main venv)

@contextmanager
def kept_rng() -> Iterator[None]:
    """Scoring the test split leaves the training's random streams (torch, numpy, random) as they were."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


class TestCurve(Callback):
    """After each chosen epoch: the clock's training CPU-minutes, then test top-1 with the clock paused."""

    def __init__(self, clock: CpuClock, cfg, epochs: list[int], max_clips: int):
        self.clock, self.cfg, self.epochs, self.max_clips = clock, cfg, epochs, max_clips
        self.loader = None
        self.points: list[dict] = []

    def test_loader(self):
        data = SkeletonData(self.cfg, self.cfg.finetune.batch_size)
        return data.test_dataloader(samples=data.test_samples()[: self.max_clips or None])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        at = self.clock.minutes()
        with self.clock.paused(), kept_rng():
            self.loader = self.loader or self.test_loader()
            pl_module.model.eval()
            probs, labels, _ = collect(self.loader, pl_module.model.predict_clips)
            pl_module.model.train()
        top1 = float((probs.argmax(1) == labels).mean())
        self.points.append({"epoch": epoch, "cpu_min": at, "top1": top1, "test_clips": self.cfg.data.test_clips,
                            "final": epoch == self.epochs[-1]})
        print(f"epoch {epoch}: {at:.2f} CPU-min, test top-1 {top1:.4f}", flush=True)


def ours_overrides(dataset: str, out_dir: str, quick: bool) -> list[str]:
    data_path = Path(load_config(dataset).data.path).resolve()
    return [f"data.path={data_path}", f"trainer.out_dir={out_dir}", "trainer.progress=false", "data.num_workers=0",
            "finetune.test=false", *(OURS_QUICK if quick else [])]


def run_ours(a) -> dict:
    """Fine-tune with the dataset's packaged recipe, scoring the test split along the way (the worker)."""
    clock = CpuClock()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="tta_ours_") as tmp:
        cfg = load_config(a.dataset, ours_overrides(a.dataset, tmp, a.quick))
        curve = TestCurve(clock, cfg, evenly_spaced(cfg.finetune.epochs, a.evals), QUICK_CLIPS if a.quick else 0)
        run_finetune(cfg, [a.dataset], callbacks=[curve])
    report = {"model": "SkeletonMAE (ours, packaged recipe)", "epochs": cfg.finetune.epochs,
              "batch": cfg.finetune.batch_size, "clip_len": cfg.data.clip_len, "machine": machine_info(),
              "points": curve.points, "train_cpu_min": clock.minutes()}
    Path(a.json).write_text(json.dumps(report) + "\n")
    return report


# ---------------------------------------------------------------- the peer's dataset description

def peer_spec(dataset: str) -> dict:
    """What peer_train.py needs to read ``dataset`` as our config does: file, splits, and the peer's graph: 2D
    layouts mapped to COCO-17 (PYSKL's 'coco' graph; our joint mapping), 3D ones on their own bones."""
    cfg = load_config(dataset)
    d = cfg.data
    data = SkeletonData(cfg, 1)
    spec = {"path": str(Path(d.path).resolve()), "train_split": d.train_split, "test_split": d.test_split,
            "is_3d": data.is_3d, "num_classes": data.num_classes}
    if data.is_3d:
        layout = get_layout(d.layout)
        spec.update(graph={"num_node": layout.num_joints, "inward": [list(b) for b in layout.bones],
                           "center": layout.center}, joint_map=None)
    else:
        spec.update(graph="coco", joint_map=joint_mapping(d.layout, "coco17_pyskl").tolist())
    return spec


# ---------------------------------------------------------------- the queue of training processes

def jobs(a) -> list[dict]:
    """Six training processes: the peer on the largest budget first, then ours, then the other peers."""
    here = Path(__file__).resolve()
    out, order = [], sorted(a.datasets, key=lambda d: -a.budgets[d])
    for dataset in order:
        cmd = [sys.executable, str(here), "ours", "--dataset", dataset, "--threads", str(a.threads), "--evals",
               str(a.evals), "--json", str(a.work / f"ours_{dataset}.json"), *(["--quick"] if a.quick else [])]
        out.append({"model": "ours", "dataset": dataset, "cmd": cmd})
    if a.peer:
        for dataset in order:
            cmd = [str(PEER_PYTHON), str(HERE / "peer_train.py"), "--spec", json.dumps(peer_spec(dataset)),
                   "--budget-min", str(a.budgets[dataset]), "--threads", str(a.threads), "--evals", str(a.peer_evals),
                   "--json", str(a.work / f"peer_{dataset}.json"), *(PEER_QUICK if a.quick else [])]
            out.append({"model": "peer", "dataset": dataset, "cmd": cmd})
        peers = [j for j in out if j["model"] == "peer"]
        out = peers[:1] + [j for j in out if j["model"] == "ours"] + peers[1:]
    return out


def run_queue(queue: list[dict], cores: list[int], env: dict, work: Path) -> None:
    """Run the jobs, one per core at a time, each pinned to its core; record exit, wall time, load average."""
    running: dict[int, tuple[dict, subprocess.Popen, float]] = {}
    pending = list(queue)
    while pending or running:
        for core in [c for c in cores if c not in running][: len(pending)]:
            job = pending.pop(0)
            job["command"] = shlex.join(["taskset", "-c", str(core), *job["cmd"]])
            job["log"] = str(work / f"{job['model']}_{job['dataset']}.log")
            job["core"], job["load_average_at_start"] = core, list(os.getloadavg())
            with open(job["log"], "w") as log:
                proc = subprocess.Popen(["taskset", "-c", str(core), *job["cmd"]], stdout=log,
                                        stderr=subprocess.STDOUT, env=env, cwd=REPO)
            running[core] = (job, proc, time.time())
            print(f"[{now()}] core {core}: {job['model']} on {job['dataset']}", flush=True)
        time.sleep(1)
        for core, (job, proc, start) in list(running.items()):
            if proc.poll() is not None:
                job.update(exit=proc.returncode, wall_min=(time.time() - start) / 60,
                           load_average_at_end=list(os.getloadavg()))
                print(f"[{now()}] core {core}: {job['model']} on {job['dataset']} ended ({proc.returncode}) after "
                      f"{job['wall_min']:.1f} min", flush=True)
                del running[core]


def collect_job(job: dict, work: Path) -> dict:
    """The job's report, or its failure with the end of its log."""
    path = work / f"{job['model']}_{job['dataset']}.json"
    info = {k: job[k] for k in ("command", "core", "exit", "wall_min", "load_average_at_start",
                                "load_average_at_end")}
    if job["exit"] != 0 or not path.is_file():
        tail = Path(job["log"]).read_text().splitlines()[-25:]
        return {"status": "failed", **info, "log_tail": tail}
    return {"status": "ok", **info, **json.loads(path.read_text())}


# ---------------------------------------------------------------- results

def final_point(run: dict) -> dict | None:
    """The run's final score (the peer's at its full test clips, i.e. the last point)."""
    finals = [p for p in run.get("points", []) if p["final"]]
    return finals[-1] if finals else None


def minutes_to_reach(run: dict, target: float) -> float | None:
    """CPU-minutes of the first scored point at or above ``target``; None if none is."""
    hits = [p["cpu_min"] for p in run.get("points", []) if p["top1"] >= target]
    return min(hits) if hits else None


def compare(dataset: str, runs: dict, budget: float) -> dict:
    """Per dataset: each model's final top-1 and CPU-minutes, and when ours reached the peer's final top-1."""
    ours, peer = runs.get("ours", {}), runs.get("peer", {})
    out = {"budget_cpu_min": budget}
    for name, run in (("ours", ours), ("peer", peer)):
        p = final_point(run)
        out[name] = None if p is None else {"top1": p["top1"], "cpu_min": p["cpu_min"], "epochs": run["epochs"],
                                            "test_clips": p["test_clips"], "within_budget": p["cpu_min"] <= budget}
    if out["ours"] and out["peer"]:
        out["ours_cpu_min_to_peer_final"] = minutes_to_reach(ours, out["peer"]["top1"])
        out["peer_cpu_min_to_ours_final"] = minutes_to_reach(peer, out["ours"]["top1"])
    return out


def verdict(dataset: str, c: dict) -> str:
    """One plain sentence: did ours reach the peer's final accuracy in less CPU time?"""
    if not (c.get("ours") and c.get("peer")):
        return f"{dataset}: no comparison (a run is missing or failed)."
    o, p, t = c["ours"], c["peer"], c["ours_cpu_min_to_peer_final"]
    if t is None:
        return (f"{dataset}: ours did **not** reach the peer's final {100 * p['top1']:.1f} % (ours ended at "
                f"{100 * o['top1']:.1f} % after {o['cpu_min']:.1f} CPU-min; the peer took {p['cpu_min']:.1f}).")
    faster = "less" if t < p["cpu_min"] else "**more**"
    return (f"{dataset}: ours reached the peer's final {100 * p['top1']:.1f} % after {t:.1f} CPU-min, {faster} than "
            f"the peer's {p['cpu_min']:.1f} CPU-min (ours ended at {100 * o['top1']:.1f} %).")


def markdown(report: dict) -> str:
    quick = "**QUICK MODE: a few clips, one epoch: these numbers mean nothing.**\n\n" if report["quick"] else ""
    s = ["# Time to accuracy: test top-1 against training CPU-minutes",
         quick + written_by(report, f"{report['wall_min']:.0f} min of wall time"),
         machine_markdown(report["machine"]).strip(),
         "Each training process: 1 torch thread, data read in the process, pinned to its own core, two at a time. "
         "CPU-minutes = the process's user + system CPU time from its start (imports, data loading, model building "
         "included), test scoring excluded. Ours: the dataset's packaged recipe (chosen on validation) from the "
         "packaged encoder, test with 2 clips per sample. Peer: ST-GCN++ (MMAction2 1.2.0) with PYSKL's joint "
         "pipeline (clip_len 100, 2 persons, batch 16, lr 0.0125 = 0.1 x 16 / 128, cosine to 0), its length in "
         "steps set from its measured step time to end inside the budget (so it may end partway through an "
         "epoch); 1 test clip per sample halfway, 5 at the end. The test split is scored at "
         "checkpoints to draw the curve, not to choose anything."]
    rows = []
    for dataset, c in report["comparison"].items():
        for name in ("ours", "peer"):
            r = c.get(name)
            reach = c.get("ours_cpu_min_to_peer_final") if name == "ours" else (r or {}).get("cpu_min")
            rows.append([dataset, c["budget_cpu_min"], report["models"][name],
                         None if r is None else f"{100 * r['top1']:.1f}", None if r is None else r["cpu_min"],
                         "not reached" if r and reach is None else reach, None if r is None else r["epochs"]])
    s.append(table(["dataset", "budget (CPU-min)", "model", "final test top-1 (%)", "CPU-min used",
                    "CPU-min to reach the peer's final top-1", "epochs"], rows))
    s.append("\n".join(f"- {verdict(d, c)}" for d, c in report["comparison"].items()))
    separate = [f"{name} on {d}: `{r['command']}`" for d, runs in report["runs"].items()
                for name, r in runs.items() if r.get("separate_run")]
    if separate:
        s.append("Run separately (the same worker command and settings, started by hand; the results were then "
                 f"written by `{report['rendered']['command']}`): " + "; ".join(separate) + ".")
    failed = [f"{name} on {d}" + (f" ({r['reason']})" if r.get("reason") else "")
              for d, runs in report["runs"].items() for name, r in runs.items() if r["status"] != "ok"]
    if failed:
        s.append("Runs without a result (their log tails are in the JSON): " + "; ".join(failed) + ".")
    s.append("![test top-1 against CPU-minutes](time_to_accuracy.png)")
    return "\n\n".join(x.strip("\n") for x in s) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(report["runs"])
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for name, run in report["runs"][dataset].items():
            for clips in sorted({p["test_clips"] for p in run.get("points", [])}):
                pts = [p for p in run["points"] if p["test_clips"] == clips]
                ax.plot([p["cpu_min"] for p in pts], [100 * p["top1"] for p in pts], marker="o" if len(pts) > 1
                        else "*", markersize=5 if len(pts) > 1 else 11,
                        label=f"{report['models'][name]}, {clips} test clip{'s' if clips > 1 else ''}")
        ax.axvline(report["comparison"][dataset]["budget_cpu_min"], color="grey", linestyle=":", label="budget")
        ax.set(title=dataset, xlabel="training CPU-minutes", ylabel="test top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- main

def parse_budgets(items: list[str]) -> dict[str, float]:
    out = dict(BUDGETS)
    for item in items:
        name, _, value = item.partition("=")
        if name not in BUDGETS or not value:
            raise SystemExit(f"--budget {item!r}: write DATASET=MINUTES with DATASET one of {', '.join(BUDGETS)}")
        out[name] = float(value)
    return out


def peer_ready() -> str | None:
    """None when benchmarks/.venv-peer can run the peer, else why not."""
    if PEER_STAMP.is_file() and PEER_PYTHON.is_file():
        return None
    return f"{PEER_STAMP} is missing: build the peer's venv with `bash benchmarks/setup_peer.sh` (or run --no-peer)"


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ours"]:
        return run_ours(ours_args(argv[1:]))
    if argv[:1] == ["render"]:
        return render(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    ap.add_argument("--budget", nargs="*", default=[], metavar="DATASET=MIN", help="training CPU-minutes per "
                    f"dataset, the same for both models (defaults {BUDGETS})")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each training process")
    ap.add_argument("--evals", type=int, default=8, help="evenly spaced scored epochs of our runs (at most)")
    ap.add_argument("--peer-evals", type=int, default=2, help="evenly spaced scored points of the peer's runs (its "
                    "test is slow: clip_len 100, 2 persons)")
    ap.add_argument("--cores", default="", help="cores to pin the processes to, e.g. 0,1 (default: the first "
                    "two this process may use)")
    ap.add_argument("--no-peer", action="store_true", help="train ours only")
    ap.add_argument("--quick", action="store_true", help="tiny budget, a few clips, one epoch: a smoke test")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    a.budgets = parse_budgets(a.budget)
    torch.set_num_threads(a.threads)  # this process only starts the others: record the threads they get
    if a.quick:
        a.datasets, a.budgets = ["jhmdb14"], {"jhmdb14": QUICK_BUDGET}
    why = None if a.no_peer else peer_ready()
    a.peer = not a.no_peer and why is None
    cores = [int(c) for c in a.cores.split(",")] if a.cores else sorted(os.sched_getaffinity(0))[:2]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    t0 = time.time()
    report = {"benchmark": "time_to_accuracy", "quick": a.quick, "time": now(),
              "command": shlex.join([Path(sys.argv[0]).name, *argv]), "git": git_commit(), "machine": machine_info(),
              "budgets_cpu_min": {d: a.budgets[d] for d in a.datasets}, "threads": a.threads, "cores": cores,
              "models": {"ours": "SkeletonMAE (ours)", "peer": "ST-GCN++ (peer)"},
              "peer_status": "ok" if a.peer else (why or "skipped: --no-peer")}
    with tempfile.TemporaryDirectory(prefix="tta_") as work:
        a.work = Path(work)
        queue = jobs(a)
        run_queue(queue, cores, env, a.work)
        report["runs"] = {d: {j["model"]: collect_job(j, a.work) for j in queue if j["dataset"] == d}
                          for d in a.datasets}
    report.update(wall_min=(time.time() - t0) / 60, load_average_at_end=list(os.getloadavg()))
    return finish(report, a.out)


def finish(report: dict, out: Path) -> dict:
    """Compare the runs, write the JSON, the markdown and the plot."""
    report["comparison"] = {d: compare(d, runs, report["budgets_cpu_min"][d]) for d, runs in report["runs"].items()}
    js, md = write_results(out, "time_to_accuracy", report, markdown(report))
    plot(report, out / "time_to_accuracy.png")
    print(f"wrote {js}, {md} and {out / 'time_to_accuracy.png'}")
    return report


def run_key(report: dict, which: str) -> tuple[str, str]:
    """``MODEL:DATASET`` of a run in ``report`` as (model, dataset)."""
    model, _, dataset = which.partition(":")
    if dataset not in report["runs"] or model not in ("ours", "peer"):
        raise SystemExit(f"{which!r}: write MODEL:DATASET, MODEL ours or peer, DATASET one of "
                         f"{', '.join(report['runs'])}")
    return model, dataset


def render(argv: list[str]) -> dict:
    """Write the results again from a report, taking some runs from separately started training processes (the
    same worker command, e.g. one started early on a busy machine); the report records which and how."""
    ap = argparse.ArgumentParser(prog="time_to_accuracy.py render", description=render.__doc__)
    ap.add_argument("report", type=Path, help="a time_to_accuracy.json")
    ap.add_argument("--run", nargs=3, action="append", default=[], metavar=("MODEL:DATASET", "JSON", "COMMAND"),
                    help="the run of MODEL (ours / peer) on DATASET is the worker report JSON, made by COMMAND")
    ap.add_argument("--not-run", nargs=2, action="append", default=[], metavar=("MODEL:DATASET", "REASON"),
                    help="the run of MODEL on DATASET was stopped, for REASON")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    report = json.loads(a.report.read_text())
    for which, path, command in a.run:
        model, dataset = run_key(report, which)
        replaced = report["runs"][dataset].get(model, {})
        report["runs"][dataset][model] = {**json.loads(Path(path).read_text()), "status": "ok", "command": command,
                                          "separate_run": True,
                                          "replaces": {k: replaced.get(k) for k in ("status", "command", "exit")}}
    for which, reason in a.not_run:
        model, dataset = run_key(report, which)
        report["runs"][dataset][model].update(status="not run", reason=reason)
    report["rendered"] = {"time": now(), "command": shlex.join([Path(sys.argv[0]).name, "render", *argv])}
    return finish(report, a.out)


def ours_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="time_to_accuracy.py ours", description="one run of ours (started by the "
                                 "queue, pinned to a core)")
    ap.add_argument("--dataset", required=True, choices=list(BUDGETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evals", type=int, default=8)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true")
    return ap.parse_args(argv)


if __name__ == "__main__":
    main()
