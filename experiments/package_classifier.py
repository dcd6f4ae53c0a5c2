"""Put the classifier of a fine-tuning run into the package, with its card and the model-zoo table.

    python experiments/package_classifier.py --run runs/encoder_benefit/final/penn_action/enc_f1.0_s0 \
        --name penn_action --command "python experiments/encoder_benefit.py final --datasets penn_action"

Reads ``RUN/checkpoints/last.ckpt`` and the run's test metrics (``RUN/metrics.json``, else ``RUN/test/metrics.json``;
test a run fine-tuned without testing first with ``skeletonmae test``), writes
``src/skeletonmae/classifiers/NAME.pt`` (weights, config, class names, card; no optimiser state) and rewrites
``src/skeletonmae/classifiers/README.md`` (one row per packaged classifier, with its sha256).
"""

from __future__ import annotations

import argparse
import sys

from skeletonmae.results import git_commit
from skeletonmae.zoo import CLASSIFIERS, package_classifier, write_zoo_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a tested fine-tuning run directory")
    parser.add_argument("--name", required=True, help="the name `skeletonmae predict --model NAME` will take")
    parser.add_argument("--command", help="the command that trained the run (default: skeletonmae finetune with the "
                        "run's config.yaml)")
    parser.add_argument("--commit", default=git_commit(), help="the commit the run was trained at (default: this "
                        "checkout's)")
    parser.add_argument("--out", default=str(CLASSIFIERS), metavar="DIR", help="where to write (default: the package)")
    args = parser.parse_args(argv)

    command = args.command or f"skeletonmae finetune --config {args.run}/config.yaml"
    path = package_classifier(args.run, args.name, command, args.commit, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB) and {write_zoo_table(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
