"""Results are files made by commands: JSON tables under ``results/`` and their markdown rendering.

A results file is ``{"title": ..., "command": ..., "rows": [row, ...]}``; each row holds at least
dataset, split, protocol, method, pretrained, label share, seed, epochs, metrics and wall seconds,
plus the git commit the numbers were produced at. ``render_markdown`` turns a file into the table the
results page shows (mean ± sample std over seeds when a configuration has several), and
``update_markdown`` replaces, in any markdown file, each block between ``<!-- results:NAME -->`` and
``<!-- /results -->`` by the table of ``results/NAME.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np

from .fileio import atomic_open

METRICS = ("top1", "mean_class_acc")
ACCURACIES = ("top1", "top5", "mean_class_acc")


def git_commit() -> str:
    """The commit of the code that runs: of the checkout this package is imported from (not of the working
    directory), with ``+dirty`` for uncommitted changes; ``unknown`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=here)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, cwd=here).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(path: str | Path, title: str, command: str, rows: list[dict], columns: list[str],
                  metrics: list[str] | tuple[str, ...] = METRICS, extra: dict | None = None) -> Path:
    """Write a results file; ``columns`` are the row keys that identify a configuration in the table and
    ``metrics`` the keys of ``row['metrics']`` it shows (accuracies are shown in %); ``extra`` adds top-level
    keys (e.g. a choice made from the rows)."""
    path = Path(path)
    with atomic_open(path, "w") as f:
        json.dump({"title": title, "command": command, "columns": columns, "metrics": list(metrics),
                   "commit": git_commit(), **(extra or {}), "rows": rows}, f, indent=1)
    return path


def is_accuracy(metric: str) -> bool:
    """``top1``, ``mean_class_acc`` and their variants (``top1_unique``, ``top1_scratch``...) are accuracies."""
    return any(metric == a or metric.startswith(a + "_") for a in ACCURACIES)


def render_markdown(path: str | Path) -> str:
    """A results file as a markdown table, one line per configuration (the rows' ``columns`` values).

    A configuration run with several seeds shows ``mean ± std``, std being the sample standard deviation over
    the seeds (ddof = 1); with one seed, its value. A metric only some rows of a configuration have is taken
    over those rows, and shows "-" where none has it. Accuracies are in %. A footer names the command, the
    commit and the rows' file, and says what ± is when the table shows one.
    """
    data = json.loads(Path(path).read_text())
    columns, metrics = data["columns"], data.get("metrics", list(METRICS))
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in data["rows"]:
        groups[tuple(str(row.get(c, "")) for c in columns)].append(row)
    head = columns + ["seeds"] + [m.replace("_", " ") for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, rows in groups.items():
        cells = list(key) + [str(len(rows))]
        for m in metrics:
            scale, digits = (100, 1) if is_accuracy(m) else (1, 4)
            vals = np.array([r["metrics"][m] for r in rows if m in r["metrics"]]) * scale
            cells.append("-" if not len(vals) else f"{vals[0]:.{digits}f}" if len(vals) == 1
                         else f"{vals.mean():.{digits}f} ± {vals.std(ddof=1):.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    wall = sum(r.get("wall_seconds", 0) for r in data["rows"])
    spent = f", {len(data['rows'])} rows, {wall / 60:.0f} min of run time in all" if wall else ""
    spread = " ± is the sample standard deviation over seeds." if any(len(g) > 1 for g in groups.values()) else ""
    lines.append(f"Produced by `{data['command']}` at commit `{data['commit']}`{spent}; rows in "
                 f"`{Path(path).as_posix()}`.{spread}")
    return "\n".join(lines)


def update_markdown(path: str | Path = "docs/results.md", results_dir: str | Path = "results") -> list[str]:
    """Re-render every ``<!-- results:NAME -->`` block of the markdown file ``path`` from ``results_dir/NAME.json``.

    A block whose results file does not exist is left as it is; the text outside the blocks is kept. Returns
    the names of the blocks rendered; the file is rewritten atomically, and only when a block changed.
    """
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    updated = []

    def fill(match: re.Match) -> str:
        name = match.group(1)
        source = Path(results_dir) / f"{name}.json"
        if not source.is_file():
            return match.group(0)
        updated.append(name)
        return f"<!-- results:{name} -->\n{render_markdown(source)}\n<!-- /results -->"

    text = re.sub(r"<!-- results:([\w\-]+) -->.*?<!-- /results -->", fill, before, flags=re.S)
    if text != before:
        with atomic_open(path, "wb") as f:
            f.write(text.encode("utf-8"))
    return updated
