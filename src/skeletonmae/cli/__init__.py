"""The ``skeletonmae`` command line: pre-train, fine-tune, test, check data, run the demo.

Every training command takes ``--config FILE`` (repeatable; later files win) and ``section.key=value``
overrides. Problems the user can fix are reported in one paragraph with exit code 2; ``--debug`` shows
the traceback as well.

One module per command group: :mod:`.train` (pretrain, finetune, ablate, test, demo), :mod:`.predict`,
:mod:`.ensemble`, :mod:`.export`, :mod:`.visualize`, :mod:`.data`, :mod:`.config`, :mod:`.runs`, and
:mod:`.pose` (videos to poses, run on its own in MediaPipe's environment: ``python -m skeletonmae.cli.pose``).
This package imports nothing heavy: the command modules are imported when the parser is built, and torch when
a command runs.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from ..errors import SkeletonMAEError


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from .config import add_config_parser
    from .data import add_data_parser
    from .ensemble import add_ensemble_parser
    from .export import add_export_parser
    from .predict import add_predict_parser
    from .runs import add_runs_parser
    from .train import add_demo_parser, add_training_parsers
    from .visualize import add_visualize_parser

    parser = argparse.ArgumentParser(
        prog="skeletonmae",
        description="SkeletonMAE: graph-based masked autoencoder pre-training for skeleton action recognition "
        "(independent implementation of Yan et al., ICCV 2023).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"skeletonmae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_training_parsers(sub)
    add_predict_parser(sub)
    add_ensemble_parser(sub)
    add_export_parser(sub)
    add_visualize_parser(sub)
    add_data_parser(sub)
    add_config_parser(sub)
    add_runs_parser(sub)
    add_demo_parser(sub)
    return parser


def count(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SkeletonMAEError as e:
        if args.debug:
            traceback.print_exc()
        print(f"skeletonmae: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the machine refused (disk full, read-only, no permission, a file where a folder must be)
        if args.debug:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"skeletonmae: error: {where}{e.strerror or e}; nothing else was changed", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skeletonmae: interrupted", file=sys.stderr)
        return 130
