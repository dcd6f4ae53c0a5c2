"""Re-render the result tables from ``results/*.json`` (so text and data never drift): every
``<!-- results:NAME -->`` block of docs/results.md and the README's headline block.

    python experiments/render_results.py

A block whose ``results/NAME.json`` does not exist yet is left as it is.
"""

import sys

from skeletonmae.results import update_markdown

PAGES = ("docs/results.md", "README.md")

if __name__ == "__main__":
    for page in PAGES:
        names = update_markdown(page, "results")
        print(f"{page}: rendered", ", ".join(names) or "nothing (no results file matches its blocks)")
    sys.exit(0)
