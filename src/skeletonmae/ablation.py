"""Ablation runner: a grid of config overrides, each cell pre-trained and fine-tuned, as one table (paper §4.4).

A cell is a list of ``section.key=value`` overrides on top of the base config. It is pre-trained (unless
``finetune.pretrained=none`` or a checkpoint is given) and fine-tuned, for every seed, by
:func:`skeletonmae.grid.run_grid`: cells whose ``metrics.json`` already exists are read back instead of run,
so an interrupted ablation resumes where it stopped. The rows go to ``results/ablation_<name>.json`` (config
overrides, seed, metrics, wall time) and the table to ``<out>/table.md``.

Two cell items steer the stages instead of overriding a key: ``finetune.pretrained=none|auto|CKPT`` (from
scratch, pre-train here, or a given checkpoint) and ``pretrain.config=NAME`` (pre-train with another
config's data, e.g. another dataset mapped to the same layout: transfer; the cell's other overrides apply to
both stages).

Presets follow the paper's tables: ``tab4a`` (encoder depth L_D), ``tab4b`` (SkeletonMAE vs the contrastive
GraphCL and JOAO pre-training of the same encoder), ``tab4c`` (backbone x masked body part), ``tab5a`` (STRL
layers M with and without pre-training), ``tab5b`` (body regions vs random joints), ``fig5`` (masked body part
x pre-training on the fine-tuning dataset or on the ``source`` dataset: transfer).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import yaml

from .errors import ConfigError
from .grid import GridRun, run_grid
from .results import render_markdown, write_results


def _grid(**axes: list) -> list[list[str]]:
    keys = list(axes)
    return [[f"{k}={json.dumps(v)}" for k, v in zip(keys, values, strict=True)]
            for values in itertools.product(*axes.values())]


PRESETS: dict[str, tuple[str, list[list[str]]]] = {
    "tab4a": ("Tab. 4a: GIN layers in the SkeletonMAE encoder (L_D)",
              _grid(**{"encoder.layers": [1, 2, 3, 4]})),
    "tab4b": ("Tab. 4b: SkeletonMAE vs GraphCL vs JOAO pre-training of the same encoder",
              _grid(**{"pretrain.method": ["skeletonmae", "graphcl", "joao"]})),
    "tab4c": ("Tab. 4c: backbone x masked body part", _grid(**{
        "encoder.backbone": ["gat", "gcn", "gin"], "mae.mask_regions": [[0], [1], [2], [3], [4], [5]]})),
    "tab5a": ("Tab. 5a: STRL layers M, with and without pre-training", _grid(**{
        "classifier.strl_layers": [1, 2, 3, 4], "finetune.pretrained": ["auto", "none"]})),
    "tab5b": ("Tab. 5b: body-region masking vs random joints at matched joint counts",
              [["mae.mask=joints", f"mae.mask_ratio={r}"] for r in (0.3, 0.5, 0.7, 0.9)]
              + [["mae.mask=regions", f"mae.mask_regions={json.dumps(r)}"]
                 for r in ([3, 5], [2, 4], [0, 3, 5], [0, 1], [1, 2, 3, 4, 5], [0, 1, 2, 3, 5], [0, 1, 3, 4, 5])]),
}


PRESET_NAMES = [*PRESETS, "fig5"]  # fig5 is built from --source by :func:`preset`


def _split_cell(cell: list[str]) -> tuple[str, str | None, list[str]]:
    """(pretrained: 'auto' / 'none' / checkpoint, pre-training config or None, the plain overrides)."""
    keys = ("finetune.pretrained", "pretrain.config")  # values are YAML, as in every override: "auto" = auto
    steer = {k: str(yaml.safe_load(o.split("=", 1)[1])) for o in cell for k in keys if o.startswith(k + "=")}
    body = [o for o in cell if not o.startswith(("finetune.pretrained=", "pretrain.config="))]
    return steer.get("finetune.pretrained", "auto"), steer.get("pretrain.config"), body


def run_ablation(config: str, cells: list[list[str]], name: str, title: str, out: str | Path, seeds: list[int],
                 overrides: list[str] | None = None, results_dir: str | Path = "results",
                 command: str = "") -> Path:
    """Run (or read back) every cell x seed; write the results file and ``out/table.md``; return the file."""
    out, overrides = Path(out), list(overrides or [])
    path = Path(results_dir) / f"ablation_{name}.json"
    runs = []
    for index, cell in enumerate(cells):
        for seed in seeds:
            run_dir = out / f"cell{index:02d}_seed{seed}"
            base = overrides + [f"trainer.seed={seed}", "trainer.resume=true"]
            pretrained, source, body = _split_cell(cell)
            info = {"cell": cell, "seed": seed, "pretrained": pretrained != "none"}
            if pretrained == "auto":  # pre-train here (on the source config's data, if any), fine-tune from it
                runs.append(GridRun(run_dir / "finetune", config, base + body, pretrain_dir=run_dir / "pretrain",
                                    pretrain_config=source, pretrain_overrides=base + body, info=info))
            else:  # from scratch ('none') or from a given checkpoint
                runs.append(GridRun(run_dir / "finetune", config, base + body + [f"finetune.pretrained={pretrained}"],
                                    info=info))

    def row(run: GridRun, report: dict, seconds: float) -> dict:
        cell = run.info["cell"]
        return {"cell": " ".join(cell), "seed": run.info["seed"], "pretrained": run.info["pretrained"],
                "overrides": cell, "metrics": {k: report[k] for k in ("top1", "top5", "mean_class_acc")},
                "wall_seconds": round(seconds, 1)}

    run_grid(runs, row, lambda rows: write_results(path, title, command, rows, columns=["cell"]))
    (out / "table.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(f"# {title}\n\n{render_markdown(path)}\n")
    return path


def preset(name: str, source: str | None = None) -> tuple[str, list[list[str]]]:
    """A preset's title and cells; ``fig5`` needs the ``source`` config it transfers from."""
    if name == "fig5":
        if not source:
            raise ConfigError("preset fig5 pre-trains on another dataset: give it with --source CONFIG "
                              "(e.g. --source jhmdb14 for a penn_action base; both must map to the same layout)")
        return (f"Fig. 5: masked body part, pre-trained on the fine-tuning data or on {source} (transfer)",
                [[f"mae.mask_regions=[{r}]", *transfer] for r in range(6)
                 for transfer in ([], [f"pretrain.config={source}"])])
    if name not in PRESETS:
        raise ConfigError(f"unknown ablation preset '{name}'; choose one of {', '.join(PRESET_NAMES)}")
    return PRESETS[name]
