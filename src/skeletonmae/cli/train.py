"""Training commands: ``pretrain``, ``finetune``, ``ablate``, ``test`` and ``demo``.

Every training command takes ``--config FILE`` (repeatable; later files win) and ``section.key=value``
overrides; ``--help`` lists every configuration key with its value (of the ``--config`` files given before it)
and description; ``skeletonmae config show`` prints the same as a YAML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ablation import PRESET_NAMES
from ..config import Config, load_config, with_overrides
from ..errors import SkeletonMAEError


def _config_epilog(cfg: Config | None = None) -> str:
    from ..config import keys, yaml_value

    source = "of the --config files given before --help" if cfg else "defaults; give --config FILE before --help " \
        "for that config's values"
    lines = [f"configuration keys ({source}; override with section.key=value, values are YAML):"]
    lines += [f"  {name} = {yaml_value(value)}  # {doc}" for name, value, doc in keys(cfg)]
    return "\n".join(lines)


class _HelpWithConfig(argparse.Action):
    """``--help`` that lists the keys with the values of the ``--config`` files given before it."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        paths = getattr(namespace, "config", None) or []
        if paths:
            try:
                parser.epilog = _config_epilog(load_config([paths] if isinstance(paths, str) else paths))
            except SkeletonMAEError as e:
                parser.exit(2, f"skeletonmae: error: {e}\n")
        parser.print_help()
        parser.exit()


def _add_config_parser(sub, name: str, **kw) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` lists every configuration key (with the values of ``--config``)."""
    p = sub.add_parser(name, add_help=False, epilog=_config_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
    p.add_argument("-h", "--help", action=_HelpWithConfig, help="show this help (with --config first: its values)")
    return p


def _training_parser(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = _add_config_parser(sub, name, help=help, description=help)
    p.add_argument("--config", action="append", default=[], metavar="FILE", help="YAML config (repeatable)")
    p.add_argument("--out", metavar="DIR", help="output directory (trainer.out_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    return p


def _load(args, extra: list[str] | None = None) -> Config:
    overrides = list(args.overrides) + (extra or [])
    if args.out:
        overrides.append(f"trainer.out_dir={args.out}")
    if args.resume:
        overrides.append("trainer.resume=true")
    return load_config(args.config, overrides)


def cmd_pretrain(args) -> int:
    from ..tasks.pretrain import run_pretrain

    run_pretrain(_load(args), args.config)
    return 0


def cmd_finetune(args) -> int:
    from ..tasks.finetune import run_finetune

    run_finetune(_load(args, [f"finetune.pretrained={args.pretrained}"] if args.pretrained else []), args.config)
    return 0


def cmd_ablate(args) -> int:
    import shlex

    from ..ablation import preset, run_ablation

    if args.preset:
        title, cells = preset(args.preset, args.source)
        name = args.name or args.preset
    elif args.cell:
        title, cells, name = "Ablation", [c.split() for c in args.cell], args.name or "custom"
    else:
        raise SkeletonMAEError("give --preset NAME or one --cell 'key=value ...' per cell")
    path = run_ablation(args.config, cells, name, title, args.out, args.seeds, args.overrides, args.results,
                        command="skeletonmae " + shlex.join(sys.argv[1:]))
    print(f"written: {path} and {Path(args.out) / 'table.md'}")
    return 0


def cmd_test(args) -> int:
    from ..models.build import load_classifier
    from ..tasks.finetune import run_test

    _, cfg = load_classifier(args.checkpoint)
    overrides = list(args.overrides) + ([f"data.path={args.data}"] if args.data else [])
    cfg = with_overrides(cfg, overrides)
    out = Path(args.out or Path(args.checkpoint).resolve().parent.parent / "test")
    out.mkdir(parents=True, exist_ok=True)
    run_test(args.checkpoint, cfg, out, split=args.split, validation=args.validation)
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo

    run_demo(Path(args.out), quick=args.quick, resume=True)
    return 0


def add_training_parsers(sub) -> None:
    """Add ``pretrain``, ``finetune``, ``ablate`` and ``test`` to a CLI's subparsers."""
    _training_parser(sub, "pretrain", "pre-train SkeletonMAE on unlabelled skeleton clips (paper §3.1)").set_defaults(
        func=cmd_pretrain)
    p = _training_parser(sub, "finetune", "fine-tune the SSL classifier and test it (paper §3.2)")
    p.add_argument("--pretrained", metavar="CKPT", help="pre-training checkpoint, or 'none' to train from scratch")
    p.set_defaults(func=cmd_finetune)

    p = _add_config_parser(sub, "ablate", help="run a grid of overrides (pre-train + fine-tune each) as one table",
                           description="run the cells of an ablation (a paper preset or --cell lists), each "
                           "pre-trained and fine-tuned for every seed; resumes finished cells; writes "
                           "results/ablation_NAME.json and OUT/table.md")
    p.add_argument("--config", required=True, metavar="FILE", help="base config (file or packaged name)")
    p.add_argument("--preset", choices=PRESET_NAMES, help="the paper's ablation tables")
    p.add_argument("--source", metavar="CONFIG", help="fig5: the config (dataset) to pre-train on for transfer")
    p.add_argument("--cell", action="append", metavar="'k=v ...'", help="one cell's overrides (repeatable)")
    p.add_argument("--name", help="results name (default: the preset)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", default="runs/ablation", metavar="DIR")
    p.add_argument("--results", default="results", metavar="DIR")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="applied to every cell")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("test", help="evaluate a fine-tuned checkpoint on a split",
                       description="evaluate a fine-tuned checkpoint on a split (K-clip testing)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--data", metavar="FILE", help="annotation pickle (default: the one the model was trained on)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--split", help="split name (default: data.test_split)")
    which.add_argument("--validation", action="store_true", help="score the validation part the checkpoint's "
                       "config holds out of its training split (data.val_fraction > 0): val_scores.csv")
    p.add_argument("--out", metavar="DIR", help="where metrics.json, predictions.csv and scores.csv go")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    p.set_defaults(func=cmd_test)


def add_demo_parser(sub) -> argparse.ArgumentParser:
    """Add ``demo`` (the whole pipeline on the embedded demo data) to a CLI's subparsers."""
    p = sub.add_parser("demo", help="the whole pipeline on the embedded demo data",
                       description="generate the demo data, pre-train, fine-tune with and without pre-training, "
                       "and test: the main job at a small CPU budget")
    p.add_argument("--out", default="runs/demo", metavar="DIR")
    p.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    p.set_defaults(func=cmd_demo)
    return p
