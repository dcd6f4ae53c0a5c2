"""Data pipeline: clips/s from pickle to batch, and resident memory against the array bytes, at NTU-120 size.

A generated PYSKL-format pickle the size of NTU-120 (114,480 clips at --scale 1; 2 persons, 17 joints,
2D float32 keypoints + scores, frames drawn from 30..300: about 7.7 GB of arrays) is loaded through
SkeletonData (load + validation), then one epoch of its train split is read through
``train_dataloader()`` with the configured (default) number of workers and the fine-tuning batch size.

Reported: load seconds; clips/s after the first batch (and the first batch's delay, which includes
starting the workers); resident memory of the main process (VmRSS / VmHWM from /proc) and of the workers
(USS = pages only that process holds, i.e. what it copied; PSS = its fair share of shared pages), sampled
during the epoch, set against the bytes of the keypoint and score arrays. The sum of PSS over the main
process and its workers is the physical memory the pipeline really takes. Target: <= 1.2 x the array bytes.

    .venv/bin/python benchmarks/data_pipeline.py                 # full size (7.7 GB pickle in /tmp, ~20 GB disk-free)
    .venv/bin/python benchmarks/data_pipeline.py --scale 0.25    # a quarter of NTU-120
    .venv/bin/python benchmarks/data_pipeline.py --quick --out /tmp/bench   # smoke test, meaningless numbers

The pickle is generated in a child process (so this process's peak memory is the loader's alone), by
pickling views of a small random pool, so generating needs little memory; it is removed afterwards unless
--keep. Writes ``data_pipeline.json`` / ``data_pipeline.md`` to --out (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import HERE, git_commit, machine_info, machine_markdown, now, table, write_results

NTU120_CLIPS = 114_480
PERSONS, JOINTS, CHANNELS = 2, 17, 2
FRAMES = (30, 300)


# -- generating the pickle (child process) ---------------------------------------------------------------
def generate(path: Path, scale: float, seed: int = 0) -> dict:
    import numpy as np

    from skeletonmae.data.annotations import save_annotations

    rng = np.random.default_rng(seed)
    n = max(8, round(NTU120_CLIPS * scale))
    pool = 16  # samples are views into a few random 300-frame clips: generating holds almost nothing
    kp = np.stack([rng.uniform(0, 1920, (pool, PERSONS, FRAMES[1], JOINTS)),
                   rng.uniform(0, 1080, (pool, PERSONS, FRAMES[1], JOINTS))], -1).astype(np.float32)
    sc = rng.uniform(0.05, 1.0, (pool, PERSONS, FRAMES[1], JOINTS)).astype(np.float32)
    lengths = rng.integers(FRAMES[0], FRAMES[1] + 1, n)
    anns = []
    for i, t in enumerate(lengths.tolist()):
        b, s = int(rng.integers(pool)), int(rng.integers(FRAMES[1] - t + 1))
        anns.append({"frame_dir": f"clip{i:06d}", "label": i % 120, "total_frames": t, "img_shape": (1080, 1920),
                     "original_shape": (1080, 1920), "keypoint": kp[b, :, s:s + t],
                     "keypoint_score": sc[b, :, s:s + t]})
    cut = int(n * 0.55)  # NTU-120 x-sub: 63k train / 51k test
    split = {"train": [a["frame_dir"] for a in anns[:cut]], "test": [a["frame_dir"] for a in anns[cut:]]}
    t0 = time.time()
    save_annotations(path, anns, split)
    frames = int(lengths.sum())
    return {"path": str(path), "scale": scale, "clips": n, "train_clips": cut, "frames": frames,
            "array_bytes": frames * PERSONS * JOINTS * (CHANNELS + 1) * 4, "file_bytes": path.stat().st_size,
            "write_s": time.time() - t0, "seed": seed}


# -- memory ----------------------------------------------------------------------------------------------
def status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) in bytes from /proc/PID/status."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


ROLLUP_KEYS = ("Rss", "Pss", "Pss_Anon", "Pss_Shmem", "Private_Clean", "Private_Dirty")


def rollup(pid: int | str = "self") -> dict[str, int]:
    """Memory of a process in bytes from /proc/PID/smaps_rollup (what psutil's memory_full_info reads), plus
    USS = Private_Clean + Private_Dirty. Pss_Anon is the anonymous memory (heap: the data) with shared pages
    split between the processes sharing them, so summing it over processes counts every page once."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            if key in ROLLUP_KEYS:
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return {}
    out["USS"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    return out


def children(pid: int) -> list[int]:
    """Descendants of ``pid`` (the data-loader workers), from /proc."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parent.items() if p in frontier]
        out += kids
        frontier = kids
    return out


class MemorySampler(threading.Thread):
    """Samples smaps_rollup of this process and its workers every ``interval`` s; keeps the peaks."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = os.getpid(), interval
        self.stop_event = threading.Event()
        self.peak: dict[str, int] = {}
        self.workers: dict[int, dict[str, int]] = {}
        self.samples = 0

    def _max(self, d: dict, key: str, value: int) -> None:
        d[key] = max(d.get(key, 0), value)

    def sample(self) -> None:
        total: dict[str, int] = {}
        for pid in [self.pid, *children(self.pid)]:
            m = rollup(pid)
            if not m:
                continue
            m["VmHWM"] = status_kb(pid).get("VmHWM", 0)
            for k in ("Pss", "Pss_Anon", "Pss_Shmem", "USS", "Rss"):
                total[k] = total.get(k, 0) + m.get(k, 0)
            if pid == self.pid:
                for k, v in m.items():
                    self._max(self.peak, f"main_{k}", v)
            else:
                total["workers_USS"] = total.get("workers_USS", 0) + m["USS"]
                total["workers_Rss"] = total.get("workers_Rss", 0) + m.get("Rss", 0)
                w = self.workers.setdefault(pid, {})
                for k, v in m.items():
                    self._max(w, k, v)
        for k, v in total.items():
            self._max(self.peak, k if k.startswith("workers_") else f"total_{k}", v)
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()
        self.sample()


# -- measuring -------------------------------------------------------------------------------------------
def measure(pickle_path: Path, batch_size: int | None, workers: int | None, max_batches: int,
            start_method: str | None = None) -> dict:
    import multiprocessing

    if start_method:  # the DataLoader takes the default context: this is what a worker is started with
        multiprocessing.set_start_method(start_method, force=True)
    from skeletonmae.config import load_config
    from skeletonmae.data.dataset import SkeletonData

    overrides = [f"data.path={pickle_path}", "data.layout=coco17"]
    if workers is not None:
        overrides.append(f"data.num_workers={workers}")
    cfg = load_config(None, overrides)
    batch_size = batch_size or cfg.finetune.batch_size
    before = {**status_kb(), **rollup()}  # after imports: the runtime (torch, numpy, lightning), not data
    dm = SkeletonData(cfg, batch_size)
    t0 = time.perf_counter()
    f = dm.load()
    load_s = time.perf_counter() - t0
    after_load = {**status_kb(), **rollup()}
    array_bytes = sum(a["keypoint"].nbytes + a["keypoint_score"].nbytes for a in f.annotations)
    owned = sum(1 for a in f.annotations if a["keypoint"].base is None)

    sampler = MemorySampler()
    sampler.start()
    loader = dm.train_dataloader()
    it = iter(loader)
    t0 = time.perf_counter()
    x = next(it)[0]
    first_s = time.perf_counter() - t0
    clips, batches, t1 = 0, 0, time.perf_counter()
    for batch in it:
        clips += len(batch[0])
        batches += 1
        if max_batches and batches >= max_batches:
            break
    steady_s = time.perf_counter() - t1
    sampler.stop()  # the workers are persistent: still alive here
    end = {**status_kb(), **rollup()}
    del it, loader
    res = {
        "start_method": multiprocessing.get_start_method(),
        "config": {"clip_len": cfg.data.clip_len, "num_persons": cfg.data.num_persons,
                   "num_workers": cfg.data.num_workers, "batch_size": batch_size, "use_score": cfg.data.use_score},
        "batch_shape": list(x.shape),
        "load_s": load_s,
        "first_batch_s": first_s,
        "clips_timed": clips,
        "batches_timed": batches,
        "clips_per_s": clips / steady_s if steady_s > 0 else None,
        "array_bytes": array_bytes,
        "arrays_owning_memory": owned,
        "main_before_load": before,
        "main_after_load": after_load,
        "main_end": end,
        "sampled_peaks": sampler.peak,
        "workers": [{"pid": pid, **w} for pid, w in sampler.workers.items()],
        "memory_samples": sampler.samples,
    }
    runtime = before.get("Pss_Anon", 0)
    res["ratios"] = {
        # main process: its heap grew by this much while loading (all private before the fork)
        "main_after_load": (after_load.get("Pss_Anon", 0) - runtime) / array_bytes,
        # main process: peak RSS (VmHWM, so transients of loading too) over the RSS before loading
        "main_peak": (end.get("VmHWM", 0) - before.get("VmRSS", 0)) / array_bytes,
        # main + workers: anonymous + shared-memory pages, each counted once, minus the runtime's heap
        "pipeline_total": (sampler.peak.get("total_Pss_Anon", 0) + sampler.peak.get("total_Pss_Shmem", 0)
                           - runtime) / array_bytes,
        # the workers' private pages: what they copied from the main process or allocated themselves
        "workers_uss": sampler.peak.get("workers_USS", 0) / array_bytes,
    }
    return res


def gb(x) -> float | None:
    return None if x is None else x / 2**30


def markdown(report: dict) -> str:
    g, m, r = report["generated"], report["measured"], report["measured"]["ratios"]
    p, b, c = m["sampled_peaks"], m["main_before_load"], m["config"]
    quick = "**QUICK MODE: a tiny file: these numbers mean nothing.**\n\n" if report["quick"] else ""
    s = ["# Data pipeline: pickle -> batch, and memory",
         f"{quick}Written by `{report['command']}` at {report['time']} (commit {report['git']['commit'][:10]}"
         f"{', dirty' if report['git']['dirty'] else ''}) in {report['wall_s']:.0f} s.",
         machine_markdown(report["machine"]).strip(),
         f"Generated pickle: scale {g['scale']} of NTU-120 = {g['clips']} clips ({g['train_clips']} in the train "
         f"split read here), {g['frames']} frames, {PERSONS} persons x {JOINTS} joints, 2D float32 + scores: "
         f"{gb(g['array_bytes']):.2f} GiB of arrays, file {gb(g['file_bytes']):.2f} GiB.",
         f"Pipeline: SkeletonData.train_dataloader(), batch {c['batch_size']}, {c['num_workers']} workers "
         f"(started by {m['start_method']}), T = {c['clip_len']}, P = {c['num_persons']}; batch shape "
         f"{m['batch_shape']}.",
         "## Throughput",
         table(["load + validate (s)", "first batch (s)", "clips timed", "clips/s (after the first batch)"],
               [[m["load_s"], m["first_batch_s"], m["clips_timed"], m["clips_per_s"]]]),
         "## Memory (GiB; ratios are to the array bytes)",
         table(["what", "GiB", "x array bytes"], [
             ["array bytes (keypoint + keypoint_score)", gb(m["array_bytes"]), 1.0],
             ["main heap before load (runtime: torch, numpy, ...; Pss_Anon)", gb(b.get("Pss_Anon")), None],
             ["main heap growth by loading (Pss_Anon after - before)",
              gb(m["main_after_load"].get("Pss_Anon", 0) - b.get("Pss_Anon", 0)), r["main_after_load"]],
             ["main peak RSS (VmHWM at the end) - RSS before load",
              gb(m["main_end"].get("VmHWM", 0) - b.get("VmRSS", 0)), r["main_peak"]],
             ["workers: sum of USS (pages copied or allocated by them), peak", gb(p.get("workers_USS")),
              r["workers_uss"]],
             ["workers: sum of RSS (shared pages counted in each), peak", gb(p.get("workers_Rss")), None],
             ["main + workers: sum of Pss_Anon + Pss_Shmem, peak, - runtime heap",
              gb(p.get("total_Pss_Anon", 0) + p.get("total_Pss_Shmem", 0) - b.get("Pss_Anon", 0)),
              r["pipeline_total"]],
         ]),
         f"Target: main + workers <= 1.2 x array bytes: {'met' if r['pipeline_total'] <= 1.2 else 'NOT met'} "
         f"({r['pipeline_total']:.2f} x). Memory from /proc/PID/smaps_rollup, sampled {m['memory_samples']} times "
         f"during the epoch (every 0.5 s). Pss counts a page shared by k processes as 1/k in each, so sums "
         f"count it once; file-backed pages (libraries, shared with other processes) are left out. "
         f"{m['arrays_owning_memory']} of {g['clips']} unpickled keypoint arrays own their buffer (the others "
         f"keep the unpickled bytes object as their base: no copy).",
         ]
    s.append("Child processes (workers; with forkserver also the fork server and resource tracker), peaks:")
    s.append(table(["pid", "USS GiB", "Pss_Anon GiB", "RSS GiB", "VmHWM GiB"],
                   [[w["pid"], gb(w.get("USS")), gb(w.get("Pss_Anon")), gb(w.get("Rss")), gb(w.get("VmHWM"))]
                    for w in m["workers"]]))
    if r["workers_uss"] > 0.5:
        s.append(f"The workers hold private copies of the data ({r['workers_uss']:.2f} x the array bytes in all): "
                 f"with the '{m['start_method']}' start method the Dataset (every sample's arrays) is pickled into "
                 "each worker. 'fork' shares the loaded arrays copy-on-write instead.")
    if report.get("notes"):
        s.append("## Notes\n\n" + "\n".join(f"- {n}" for n in report["notes"]))
    return "\n\n".join(x.strip("\n") for x in s) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tiny file, a few batches: a smoke test")
    ap.add_argument("--scale", type=float, default=1.0, help="share of NTU-120's 114,480 clips (default 1)")
    ap.add_argument("--batch-size", type=int, default=0, help="0: the config's fine-tuning batch (128)")
    ap.add_argument("--workers", type=int, default=None, help="default: the config's data.num_workers")
    ap.add_argument("--start-method", choices=["fork", "forkserver", "spawn"],
                    help="worker start method (default: Python's; 'forkserver' is the default from Python 3.14)")
    ap.add_argument("--batches", type=int, default=0, help="stop after this many batches (0: one epoch)")
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/skeletonmae_bench"), help="where the pickle goes")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the generated pickle")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--_generate", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._generate:
        print(json.dumps(generate(a._generate, a.scale)), flush=True)
        return {}
    if a.quick:
        a.scale, a.batch_size = 0.001, a.batch_size or 8
    t_start = time.time()
    a.tmp.mkdir(parents=True, exist_ok=True)
    path = a.tmp / f"ntu120_like_scale{a.scale:g}.pkl"
    meta_path = path.with_suffix(".json")
    if a.keep and path.is_file() and meta_path.is_file():
        generated = json.loads(meta_path.read_text())
        print(f"reusing {path}", flush=True)
    else:
        print(f"generating {path} (scale {a.scale}) ...", flush=True)
        r = subprocess.run([sys.executable, __file__, "--_generate", str(path), "--scale", str(a.scale)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE)})
        if r.returncode != 0:
            raise SystemExit(f"generating the pickle failed:\n{r.stderr}")
        generated = json.loads(r.stdout.strip().splitlines()[-1])
        meta_path.write_text(json.dumps(generated))
    print(f"{generated['clips']} clips, {gb(generated['array_bytes']):.2f} GiB of arrays; loading ...", flush=True)
    report = {"benchmark": "data_pipeline", "quick": a.quick, "time": now(),
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "git": git_commit(), "machine": machine_info(), "generated": generated}
    try:
        report["measured"] = measure(path, a.batch_size or None, a.workers, a.batches, a.start_method)
    finally:
        if not a.keep:
            path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
    report["wall_s"] = time.time() - t_start
    js, md = write_results(a.out, "data_pipeline", report, markdown(report))
    m = report["measured"]
    print(f"{m['clips_per_s']:.0f} clips/s; main + workers {m['ratios']['pipeline_total']:.2f} x array bytes; "
          f"wrote {js} and {md}")
    return report


if __name__ == "__main__":
    main()
