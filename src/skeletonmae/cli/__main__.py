"""``python -m skeletonmae.cli ...``: the ``skeletonmae`` command (e.g. under torchrun)."""

import sys

from . import main

sys.exit(main())
