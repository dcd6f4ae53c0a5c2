"""The ``runs`` command: ``runs ls`` lists the runs under a folder, ``runs compare`` sets runs side by side."""

from __future__ import annotations

import argparse
from pathlib import Path


def _table(rows: list[dict[str, str]]) -> str:
    """``rows`` (dicts with the same keys) as a plain-text table, columns as wide as their widest cell."""
    headers = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(r[h].ljust(w) for h, w in zip(headers, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_ls(args) -> int:
    from ..runs import find_runs

    root = Path(args.dir)
    runs = find_runs(root)
    if not runs:
        print(f"no runs under {root} (a run directory holds the config.yaml that pretrain / finetune write)")
        return 0
    print(_table([run.summary(root) for run in runs]))
    return 0


def cmd_compare(args) -> int:
    from ..config import yaml_value
    from ..runs import config_differences, read_run

    runs = [read_run(path) for path in args.runs]
    print(_table([run.summary() for run in runs]))
    differences = config_differences(runs)
    if not differences:
        print("\nthe configs are the same (apart from trainer.out_dir)")
        return 0
    names = [run.summary()["run"] for run in runs]
    print("\nconfig keys that differ:")
    print(_table([{"key": key, **{name: yaml_value(v) for name, v in zip(names, values, strict=True)}}
                  for key, values in differences]))
    return 0


def add_runs_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``runs`` command (``runs ls``, ``runs compare``) to a CLI's subparsers."""
    p = subparsers.add_parser("runs", help="list and compare training runs (config, progress, accuracy)",
                              description="read run directories (config.yaml, run.json, logs/metrics.csv, "
                              "metrics.json) and print them as tables")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = rsub.add_parser("ls", help="one row per run under a folder",
                         description="list every run under DIR (searched recursively): stage, config, dataset, "
                         "epochs done of planned, the pre-trained encoder, validation and test top-1, mean class "
                         "accuracy")
    ls.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="folder of runs (default: runs)")
    ls.set_defaults(func=cmd_ls)
    compare = rsub.add_parser("compare", help="runs side by side, with the config keys that differ",
                              description="the rows of `runs ls` for the given runs, then every config key whose "
                              "value differs between them")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run directories (--out of pretrain / finetune)")
    compare.set_defaults(func=cmd_compare)
    return p
