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


def check_speed(report: dict, peer: bool) -> None:
    check_machine(report)
    assert report["quick"] and report["matmul_gflops"] > 0
    models = {"SkeletonMAE pre-training", "SSL fine-tuning"} | ({"ST-GCN++ (MMAction2, peer)"} if peer else set())
    assert {r["model"] for r in report["train"]} == models
    for row in report["train"]:
        assert row["clips_per_s"] > 0 and row["train_flops_per_clip"] > row["forward_flops_per_clip"] > 0
        assert 0 < row["fraction_of_matmul"] and row["rounds"] == 2 and row["cores_used"] > 0
        if peer and "peer" not in row["model"]:  # one ratio per round, and the verdict follows the spread
            ratio = row["ratio_to_peer"]
            assert len(ratio["per_round"]) == 2 and ratio["agree"] == (ratio["iqr_over_median"] <= 0.15)
    assert {r["batch"] for r in report["inference"]} == {1, 4}
    assert all(len(r) == 5 + 3 * peer for r in report["rounds"]["quick"])  # every block ran in every round


def test_speed_quick(tmp_path):
    run("speed.py", "--no-peer", "--out", str(tmp_path), "--busy-cores", "1", "--name", "busy")
    report = json.loads((tmp_path / "busy.json").read_text())
    check_speed(report, peer=False)
    assert report["peer"]["status"] == "skipped" and report["settings"]["busy_cores"] == 1
    md = (tmp_path / "busy.md").read_text()
    assert "QUICK MODE" in md and "| SSL fine-tuning |" in md and "1 busy-loop process(es)" in md


@pytest.mark.skipif(not (BENCH / ".venv-peer" / ".installed").is_file(),
                    reason="the peer's venv is not built (bash benchmarks/setup_peer.sh)")
def test_speed_quick_with_the_peer_in_turns(tmp_path):
    run("speed.py", "--out", str(tmp_path), timeout=300)
    report = json.loads((tmp_path / "speed.json").read_text())
    check_speed(report, peer=True)
    assert report["peer"]["status"] == "ok"


def test_ratio_spread_and_verdict_by_hand():
    sys.path.insert(0, str(BENCH))
    import speed

    def rounds(ours_walls, peer_walls):  # one step of the same batch per block: rate ratio = peer / ours wall
        return [{"pretrain": {"steps": 1, "wall_s": o}, "peer": {"steps": 1, "wall_s": p}}
                for o, p in zip(ours_walls, peer_walls, strict=True)]

    steady = speed.ratio_to_peer("pretrain", rounds([1, 2, 4, 1], [4, 8, 16, 4]), 0.15)  # load moves both alike
    assert steady["median"] == 4 and steady["iqr_over_median"] == 0 and steady["agree"]
    noisy = speed.ratio_to_peer("pretrain", rounds([1, 1, 1, 1, 1], [2, 3, 4, 5, 6]), 0.15)
    # ratios 2..6: median 4, quartiles 3 and 5 -> spread 0.5
    assert noisy["median"] == 4 and noisy["iqr_over_median"] == 0.5 and not noisy["agree"]


def test_profile_step_quick(tmp_path):
    run("profile_step.py", "--out", str(tmp_path))
    report = json.loads((tmp_path / "profile_step.json").read_text())
    check_machine(report)
    assert [r["step"] for r in report["steps"]] == ["SkeletonMAE pre-training", "SSL fine-tuning"]
    for row in report["steps"]:
        assert row["share"]["fraction_of_matmul"] > 0 and len(row["share"]["fraction_per_round"]) == 2
        assert row["ms_by_kind"]["matmul / convolution"] > 0 and row["top_ops"] and "compile" not in row
    assert "| SSL fine-tuning |" in (tmp_path / "profile_step.md").read_text()


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


def test_time_to_accuracy_quick(tmp_path):
    """Ours, and the peer when benchmarks/.venv-peer is built, each for one tiny epoch on JHMDB."""
    run("time_to_accuracy.py", "--out", str(tmp_path), timeout=240)
    report = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    check_machine(report)
    assert report["quick"] and list(report["budgets_cpu_min"]) == ["jhmdb14"] and report["threads"] == 1
    peer_ready = (BENCH / ".venv-peer" / ".installed").is_file()
    runs = report["runs"]["jhmdb14"]
    assert set(runs) == ({"ours", "peer"} if peer_ready else {"ours"}), report["peer_status"]
    for name, r in runs.items():
        assert r["status"] == "ok", f"{name}: " + "\n".join(r.get("log_tail", []))
        assert r["command"].startswith("taskset -c ") and r["machine"]["torch_threads"] == 1
        minutes = [p["cpu_min"] for p in r["points"]]
        assert minutes == sorted(minutes) and minutes[0] > 0 and r["train_cpu_min"] >= minutes[-1]
        assert all(0 <= p["top1"] <= 1 for p in r["points"]) and r["points"][-1]["final"]
    c = report["comparison"]["jhmdb14"]
    assert c["ours"]["epochs"] == 1 and c["budget_cpu_min"] > 0
    if peer_ready:
        assert runs["peer"]["calibration"]["total_steps"] == runs["peer"]["steps"]
        assert "ours_cpu_min_to_peer_final" in c
    assert "QUICK MODE" in (tmp_path / "time_to_accuracy.md").read_text()
    assert (tmp_path / "time_to_accuracy.png").stat().st_size > 0


@pytest.mark.parametrize("script", ["data_pipeline.py", "peer_stgcnpp.py", "peer_train.py"])
def test_help(script):
    # peer_stgcnpp.py and peer_train.py only parse their arguments here: the peer's packages live in .venv-peer
    r = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage" in r.stdout
