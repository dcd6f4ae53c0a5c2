"""Re-render the README's result tables from ``results/*.json`` (so text and data never drift).

    python experiments/render_readme.py
"""

import sys

from skeletonmae.results import update_readme

if __name__ == "__main__":
    names = update_readme("README.md", "results")
    print("rendered:", ", ".join(names) or "nothing (no results files match the README's blocks)")
    sys.exit(0)
