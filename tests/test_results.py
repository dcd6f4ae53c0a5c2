"""Results files: JSON rows in, the markdown tables of docs/results.md and the README out."""

from __future__ import annotations

import json
import re

from skeletonmae.results import git_commit, is_accuracy, render_markdown, update_markdown, write_results


def _rows():
    return [
        {"method": "a", "seed": 0, "metrics": {"top1": 0.80, "top1_unique": 0.70, "rce": 0.12345}, "wall_seconds": 60},
        {"method": "a", "seed": 1, "metrics": {"top1": 0.90, "top1_unique": 0.60, "rce": 0.12345}, "wall_seconds": 60},
        {"method": "b", "seed": 0, "metrics": {"top1": 0.5, "top1_unique": 0.25, "rce": 1.0}, "wall_seconds": 0},
    ]


def test_table_shows_mean_and_spread_over_seeds_in_percent(tmp_path):
    path = write_results(tmp_path / "r.json", "T", "python make.py", _rows(), columns=["method"],
                         metrics=["top1", "top1_unique", "rce"])
    data = json.loads(path.read_text())
    assert data["title"] == "T" and len(data["rows"]) == 3 and data["commit"]
    table = render_markdown(path).splitlines()
    assert table[0] == "| method | seeds | top1 | top1 unique | rce |"
    assert table[2] == "| a | 2 | 85.0 ± 7.1 | 65.0 ± 7.1 | 0.1235 ± 0.0000 |"  # sample std of 80, 90: 5 √2
    assert table[3] == "| b | 1 | 50.0 | 25.0 | 1.0000 |"
    assert "`python make.py`" in table[-1] and "3 rows, 2 min of run time in all" in table[-1]
    assert table[-1].endswith("`. ± is the sample standard deviation over seeds.")


def test_accuracy_variants_are_percent_and_extra_keys_are_kept(tmp_path):
    assert is_accuracy("top1_gain") and is_accuracy("mean_class_acc_unique") and is_accuracy("top5")
    assert not is_accuracy("rce") and not is_accuracy("top10") and not is_accuracy("top1x")
    rows = [{"d": "x", "metrics": {"top1_gain": -0.0123, "rce": 0.5}}]
    path = write_results(tmp_path / "r.json", "T", "cmd", rows, ["d"], ["top1_gain", "rce"], extra={"check": True})
    assert render_markdown(path).splitlines()[2] == "| x | 1 | -1.2 | 0.5000 |"
    assert json.loads(path.read_text())["check"] is True


def test_a_metric_some_rows_lack_is_taken_over_the_rows_that_have_it(tmp_path):
    rows = [{"d": "x", "seed": 0, "metrics": {"top1": 0.8, "top1_peer": 0.9}},
            {"d": "x", "seed": 1, "metrics": {"top1": 0.6}}, {"d": "y", "seed": 0, "metrics": {"top1": 0.5}}]
    path = write_results(tmp_path / "r.json", "T", "cmd", rows, ["d"], ["top1", "top1_peer"])
    table = render_markdown(path).splitlines()
    assert table[2] == "| x | 2 | 70.0 ± 14.1 | 90.0 |" and table[3] == "| y | 1 | 50.0 | - |"


def test_sample_std_over_three_seeds_and_no_footnote_without_spread(tmp_path):
    rows = [{"method": "a", "seed": s, "metrics": {"top1": v}} for s, v in enumerate((0.80, 0.85, 0.93))]
    table = render_markdown(write_results(tmp_path / "r.json", "T", "cmd", rows, columns=["method"], metrics=["top1"]))
    assert table.splitlines()[2] == "| a | 3 | 86.0 ± 6.6 |"  # numpy: std([80, 85, 93], ddof=1) = 6.557
    one = render_markdown(write_results(tmp_path / "one.json", "T", "cmd", rows[:1], columns=["method"],
                                        metrics=["top1"]))
    assert "±" not in one


def test_markdown_blocks_are_replaced_and_others_kept(tmp_path):
    write_results(tmp_path / "r.json", "T", "cmd", _rows(), columns=["method"], metrics=["top1"])
    page = tmp_path / "results.md"
    page.write_text("intro ±\n<!-- results:r -->\nold\n<!-- /results -->\n<!-- results:missing -->\nkeep\n"
                    "<!-- /results -->\nend\n", encoding="utf-8")
    assert update_markdown(page, tmp_path) == ["r"]
    text = page.read_text(encoding="utf-8")
    assert "old" not in text and "| a | 2 | 85.0 ± 7.1 |" in text and "keep" in text
    assert text.startswith("intro ±\n") and text.endswith("end\n")
    assert update_markdown(page, tmp_path) == ["r"] and page.read_text(encoding="utf-8") == text  # idempotent


def test_a_block_without_its_results_file_leaves_the_file_untouched(tmp_path):
    page = tmp_path / "README.md"
    page.write_text("<!-- results:encoder_summary -->\nnot measured yet\n<!-- /results -->\n")
    stamp = page.stat().st_mtime_ns
    assert update_markdown(page, tmp_path) == []
    assert page.read_text() == "<!-- results:encoder_summary -->\nnot measured yet\n<!-- /results -->\n"
    assert page.stat().st_mtime_ns == stamp  # not rewritten


def test_git_commit_is_that_of_the_imported_code_not_of_the_working_directory(tmp_path, monkeypatch):
    here = git_commit()
    monkeypatch.chdir(tmp_path)  # not a git checkout
    assert git_commit() == here
    if here != "unknown":  # running from a checkout: a short hash, perhaps with +dirty
        assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", here)
