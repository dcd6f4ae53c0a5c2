"""The ``visualize`` command: the figures of :mod:`skeletonmae.viz` from checkpoints, metrics and logs.

Building the parser imports neither matplotlib nor torch; each action imports the figure code when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SkeletonMAEError
from ..fileio import check_output

if TYPE_CHECKING:
    import numpy as np


def _class_names_for(data_path: str | Path | None, num: int | None = None) -> list[str] | None:
    from ..data.annotations import read_label_map

    if not data_path:
        return None
    names = read_label_map(Path(data_path).parent / "label_map.txt")
    if names and num is not None and len(names) < num:
        return None
    return names


def _datamodule(cfg, data: str | None):
    from ..config import with_overrides
    from ..data.dataset import SkeletonData

    if data:
        cfg = with_overrides(cfg, [f"data.path={data}"])
    return cfg, SkeletonData(cfg, batch_size=32)


def cmd_reconstruction(args) -> int:
    import numpy as np
    import torch

    from ..models.build import load_pretrained
    from ..viz import _class_name, plot_reconstruction

    check_output(args.out, [args.checkpoint] + ([args.data] if args.data else []))
    model, cfg = load_pretrained(args.checkpoint)
    cfg, dm = _datamodule(cfg, args.data)
    split = args.split or cfg.data.test_split
    samples = dm.test_samples(split)
    if not 0 <= args.index < len(samples):
        raise SkeletonMAEError(f"--index {args.index} is outside split '{split}' (0..{len(samples) - 1})")
    sample = samples[args.index]
    # first test clip [P, T, V, C]; the test pipeline draws nothing from its Generator
    x = torch.from_numpy(dm.pipeline(train=False)(sample, np.random.default_rng(args.index))["keypoint"][0])
    names = _class_names_for(cfg.data.path)
    title = (f"SkeletonMAE reconstruction (target={model.target}): {sample['frame_dir']}, "
             f"{_class_name(names, int(sample['label']))}")
    path = plot_reconstruction(model, x, cfg.encoder.layout, args.out, frames=args.frames, seed=args.seed,
                               title=title, y_down=not dm.is_3d)
    print(f"wrote {path}")
    return 0


def _classifier_features(model, samples: list[dict], dm) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from ..data.dataset import SkeletonDataset, collect

    loader = torch.utils.data.DataLoader(SkeletonDataset(samples, dm.pipeline(train=False)), batch_size=32)
    model.eval()
    feats, labels, _ = collect(loader, lambda x: model.forward_features(x[:, 0]))  # the first test clip
    return feats, labels


def cmd_pca(args) -> int:
    from ..models.build import load_checkpoint, load_classifier, load_pretrained
    from ..viz import plot_embedding_pca

    check_output(args.out, [args.checkpoint] + ([args.data] if args.data else []))
    ckpt = load_checkpoint(args.checkpoint)
    hp = ckpt.get("hyper_parameters", {})
    finetuned = "num_classes" in hp
    model, cfg = load_classifier(ckpt) if finetuned else load_pretrained(ckpt)
    cfg, dm = _datamodule(cfg, args.data)
    split = args.split or cfg.data.test_split
    samples = dm.test_samples(split)
    classes = args.classes if args.classes else sorted({int(s["label"]) for s in samples})[:5]
    samples = [s for s in samples if int(s["label"]) in set(classes)]
    if not samples:
        raise SkeletonMAEError(f"split '{split}' has no clips of classes {classes}")
    if finetuned:
        feats, labels = _classifier_features(model, samples, dm)
        kind = "fine-tuned SSL features"
    else:
        from ..tasks.probe import extract_features

        feats, labels = extract_features(samples, dm, model.encoder)
        kind = "pre-trained encoder features (pooled per joint)"
    names = hp.get("class_names") or _class_names_for(cfg.data.path)
    path = plot_embedding_pca(feats, labels, names, args.out, classes=classes,
                              title=f"2D PCA of {kind}\n{Path(cfg.data.path).stem}, split '{split}'")
    print(f"wrote {path}")
    return 0


def _confusion_class_names(metrics_path: Path, report: dict, labels: str | None,
                           checkpoint: str | None) -> tuple[list[str] | None, str]:
    """The class names for a confusion matrix and where they came from: ``--labels``, else the checkpoint
    (``--checkpoint``, the one a test run names, or the run's ``checkpoints/last.ckpt``), else label_map.txt
    beside the data file of the run's config.yaml."""
    from ..data.annotations import read_label_map

    if labels:
        names = read_label_map(labels)
        if names is None:
            raise SkeletonMAEError(f"label map {labels} not found")
        return names, labels
    if checkpoint and not Path(checkpoint).is_file():
        raise SkeletonMAEError(f"checkpoint {checkpoint} not found; give the fine-tuning checkpoint the metrics "
                               "came from")
    candidates = [checkpoint, report.get("checkpoint"), metrics_path.parent / "checkpoints" / "last.ckpt"]
    for candidate in [Path(c) for c in candidates if c]:
        if candidate.is_file():
            from ..models.build import class_names, load_checkpoint

            names = class_names(load_checkpoint(candidate))
            if names:
                return names, str(candidate)
    config = metrics_path.parent / "config.yaml"
    if config.is_file():
        from ..config import load_config

        try:
            names = _class_names_for(load_config(config).data.path)
        except SkeletonMAEError:
            names = None
        if names:
            return names, f"the label map of the data in {config}"
    return None, "none found (classes are numbered)"


def cmd_confusion(args) -> int:
    from ..viz import plot_confusion

    check_output(args.out, [args.metrics] + [p for p in (args.labels, args.checkpoint) if p])
    metrics_path = Path(args.metrics)
    if not metrics_path.is_file():
        raise SkeletonMAEError(f"{metrics_path} not found; give the metrics.json a fine-tuning or test run wrote")
    try:
        report = json.loads(metrics_path.read_text())
    except json.JSONDecodeError as e:
        raise SkeletonMAEError(f"{metrics_path} is not valid JSON ({e})") from e
    if not isinstance(report, dict) or "confusion" not in report:
        raise SkeletonMAEError(f"{metrics_path} has no 'confusion' matrix; give the metrics.json of fine-tuning")
    confusion = report["confusion"]
    names, source = _confusion_class_names(metrics_path, report, args.labels, args.checkpoint)
    print(f"class names: {source}")
    split = report.get("split")
    title = "Confusion matrix" + (f" ({split} split)" if split else "")
    path = plot_confusion(confusion, names, args.out, normalize=not args.counts, title=title)
    print(f"wrote {path}")
    return 0


def cmd_curves(args) -> int:
    from ..viz import plot_curves

    check_output(args.out, [args.run])
    path = plot_curves(args.run, args.out)
    print(f"wrote {path}")
    return 0


def add_visualize_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``visualize`` command (reconstruction, pca, confusion, curves) to a CLI's subparsers."""
    vis = subparsers.add_parser("visualize", help="draw figures (reconstruction, PCA, confusion, curves) as PNG",
                                description="draw the paper's figures as PNG files: reconstructions of masked "
                                "skeletons (Fig. 6), 2D PCA of representations (Fig. 4a/b), a confusion matrix "
                                "(Fig. 4c), and training curves")
    vsub = vis.add_subparsers(dest="visualize_command", metavar="FIGURE", required=True)

    p = vsub.add_parser("reconstruction", help="input / masked input / reconstruction of one clip (Fig. 6)",
                        description="input, masked input and SkeletonMAE reconstruction of one test clip at "
                        "evenly spaced frames (needs a pre-training checkpoint with target coords or window)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training checkpoint")
    p.add_argument("--data", metavar="PKL", help="annotation pickle (default: the one in the checkpoint's config)")
    p.add_argument("--split", help="split name (default: data.test_split)")
    p.add_argument("--index", type=int, default=0, metavar="N", help="clip index in the split (default 0)")
    p.add_argument("--frames", type=int, default=4, help="frames (columns) to show (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn mask (default 0)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=cmd_reconstruction)

    p = vsub.add_parser("pca", help="2D PCA of clip representations of a few classes (Fig. 4a/b)",
                        description="2D PCA of clip representations: pooled encoder features for a "
                        "pre-training checkpoint, SSL features for a fine-tuning checkpoint")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training or fine-tuning checkpoint")
    p.add_argument("--data", metavar="PKL", help="annotation pickle (default: the one in the checkpoint's config)")
    p.add_argument("--split", help="split name (default: data.test_split)")
    p.add_argument("--classes", type=int, nargs="+", metavar="ID", help="class ids to show (default: first 5)")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=cmd_pca)

    p = vsub.add_parser("confusion", help="confusion matrix from a metrics.json (Fig. 4c)",
                        description="confusion matrix from the metrics.json that fine-tuning or testing wrote")
    p.add_argument("--metrics", required=True, metavar="JSON", help="metrics.json with a 'confusion' key")
    p.add_argument("--labels", metavar="TXT", help="label_map.txt, one class name per line (default: the class "
                   "names in the checkpoint, else label_map.txt beside the data file of the run's config.yaml)")
    p.add_argument("--checkpoint", metavar="CKPT", help="fine-tuning checkpoint whose class names to use (default: "
                   "the one a test run's metrics.json names, or the run's checkpoints/last.ckpt)")
    p.add_argument("--counts", action="store_true", help="show clip counts instead of row-normalised shares")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=cmd_confusion)

    p = vsub.add_parser("curves", help="training curves of a run (loss, accuracy)",
                        description="training curves from RUN/logs/metrics.csv")
    p.add_argument("--run", required=True, metavar="DIR", help="output directory of a pretrain / finetune run")
    p.add_argument("--out", required=True, metavar="PNG")
    p.set_defaults(func=cmd_curves)
    return vis
