"""The ``config`` command: ``config show`` prints the merged configuration of config files and overrides."""

from __future__ import annotations

import argparse


def cmd_show(args) -> int:
    from ..config import commented_yaml, load_config

    print(commented_yaml(load_config(args.config, args.overrides)), end="")
    return 0


def add_config_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``config`` command (``config show``) to a CLI's subparsers."""
    p = subparsers.add_parser("config", help="show the configuration a training command would use",
                              description="inspect configurations")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="print the merged config as YAML, each key with its description",
                           description="print the configuration that `pretrain` / `finetune` would run with: the "
                           "defaults, then each --config file, then the overrides; as YAML (usable as a config "
                           "file), each key followed by its description and, where changed, its default")
    show.add_argument("--config", action="append", default=[], metavar="FILE",
                      help="YAML config or packaged config name (repeatable; later files win)")
    show.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    show.set_defaults(func=cmd_show)
    return p
