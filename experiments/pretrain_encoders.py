"""Pre-train the packaged encoders: build the corpus, pre-train in stages, keep every stage's checkpoint.

    OMP_NUM_THREADS=1 python experiments/pretrain_encoders.py --modality 2d   # ~45 min on one core
    OMP_NUM_THREADS=1 python experiments/pretrain_encoders.py --modality 3d   # ~35 min on one core

1. The corpus (``runs/corpus/pool{2d,3d}.pkl``, `skeletonmae data pool`): every real set here except the splits
   any results table evaluates on (Penn Action test; JHMDB test1-3; NW-UCLA xview_val; UTKinect and Florence3D
   xsub_val). 2D: Penn Action and JHMDB in COCO-17, and every 3D clip through 4 virtual cameras; 3D: the 3D
   sets in the Kinect-20 layout. Bandai-Namco (CC BY-NC 4.0) enters whole: it has no test split.
2. Pre-training with the packaged config ``encoder_2d`` / ``encoder_3d`` (the paper's SkeletonMAE), in stages:
   the run is resumed to each stage's epoch count and the stage's ``last.ckpt`` kept as ``stage_E.ckpt``, so
   fine-tuning can measure what longer pre-training gains (the schedule is Adam at a constant lr, so a staged
   run is the same run as an uninterrupted one).

`python experiments/package_encoders.py` then writes the chosen stage into the package with its model card.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from skeletonmae.config import load_config
from skeletonmae.data.pool import write_pool
from skeletonmae.results import git_commit
from skeletonmae.tasks.pretrain import run_pretrain

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES_2D = [("penn_action", "penn13"), ("jhmdb14", "jhmdb15")]
SOURCES_3D = [("nw_ucla", "kinect20"), ("utkinect", "kinect20"), ("florence3d", "florence15"),
              ("bandai_namco", "kinect20")]
EVALUATED = ["penn_action/test", "jhmdb14/test1", "jhmdb14/test2", "jhmdb14/test3", "nw_ucla/xview_val",
             "utkinect/xsub_val", "florence3d/xsub_val"]


def corpus(modality: str, out: Path, views: int = 4, seed: int = 0) -> Path:
    """The pooled pre-training corpus of ``modality`` (built once)."""
    if out.is_file():
        return out
    sources = (SOURCES_2D + SOURCES_3D) if modality == "2d" else SOURCES_3D
    paths = [(DATA / name / f"{name}.pkl", layout) for name, layout in sources]
    names = {name for name, _ in sources}
    exclude = [e for e in EVALUATED if e.split("/")[0] in names]
    if modality == "2d":
        return write_pool(out, paths, "coco17", exclude, views=views, seed=seed)
    return write_pool(out, paths, "kinect20", exclude)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=["2d", "3d"], required=True)
    parser.add_argument("--stages", type=int, nargs="+", help="epoch counts to keep (default: 1/4, 1/2, all)")
    parser.add_argument("--out", default="runs/encoders")
    parser.add_argument("overrides", nargs="*", help="config overrides (section.key=value)")
    args = parser.parse_args(argv)

    config = f"encoder_{args.modality}"
    data = corpus(args.modality, Path("runs/corpus") / f"pool{args.modality}.pkl")
    run_dir = Path(args.out) / args.modality
    epochs = load_config(config, args.overrides).pretrain.epochs
    stages = args.stages or sorted({epochs // 4, epochs // 2, epochs})
    start = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    commit = run_dir / "commit.txt"  # the commit the run started from (the model card names it)
    if not commit.is_file():
        commit.write_text(git_commit() + "\n")
    for stage in stages:
        kept = run_dir / f"stage_{stage}.ckpt"
        if kept.is_file():
            continue
        cfg = load_config(config, [f"data.path={data}", f"pretrain.epochs={stage}", "trainer.resume=true",
                                   f"trainer.out_dir={run_dir / 'run'}", *args.overrides])
        shutil.copyfile(run_pretrain(cfg), kept)
        print(f"stage {stage} epochs: {kept} ({(time.time() - start) / 60:.0f} min so far)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
