"""The benchmark scripts run end to end in their smoke mode (tiny sizes, no peer), so they cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str, timeout: float = 120) -> None:
    r = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{script} failed:\n{r.stdout}\n{r.stderr}"


def check_machine(report: dict) -> None:
    m = report["machine"]
    assert m["cores"] >= 1 and m["torch"] and m["torch_threads"] >= 1
    assert "LD_PRELOAD" in m and m["allocator"] and m["cpu_model"]


def test_speed_quick(tmp_path):
    run("speed.py", "--no-peer", "--out", str(tmp_path))
    report = json.loads((tmp_path / "speed.json").read_text())
    check_machine(report)
    assert report["quick"] and report["peer"]["status"] == "skipped"
    assert report["matmul"]["gflops"] > 0
    assert {r["model"] for r in report["train"]} == {"SkeletonMAE pre-training", "SSL fine-tuning"}
    for row in report["train"]:
        assert row["clips_per_s"] > 0 and row["train_flops_per_clip"] > row["forward_flops_per_clip"] > 0
        assert 0 < row["fraction_of_matmul"]
    assert report["inference"][0]["batch1"]["ms_per_batch"] > 0
    md = (tmp_path / "speed.md").read_text()
    assert "QUICK MODE" in md and "| SSL fine-tuning |" in md


def test_data_pipeline_quick(tmp_path):
    run("data_pipeline.py", "--out", str(tmp_path), "--tmp", str(tmp_path / "data"))
    report = json.loads((tmp_path / "data_pipeline.json").read_text())
    check_machine(report)
    m = report["measured"]
    assert report["quick"] and m["clips_per_s"] > 0 and m["clips_timed"] > 0
    assert m["array_bytes"] == report["generated"]["array_bytes"]
    assert m["ratios"]["main_after_load"] > 0.5  # the arrays are resident in the main process
    assert not list((tmp_path / "data").glob("*.pkl")), "the generated pickle is removed without --keep"
    assert "QUICK MODE" in (tmp_path / "data_pipeline.md").read_text()


@pytest.mark.parametrize("script", ["data_pipeline.py", "peer_stgcnpp.py"])
def test_help(script):
    # peer_stgcnpp.py only parses its arguments here: the peer's packages live in benchmarks/.venv-peer
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage" in r.stdout
