"""The ``skeletonmae`` command line: pre-train, fine-tune, test, check data, run the demo.

Every training command takes ``--config FILE`` (repeatable; later files win) and ``section.key=value``
overrides. Problems the user can fix are reported in one paragraph with exit code 2; ``--debug`` shows
the traceback as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
from pathlib import Path

from .ablation import PRESET_NAMES
from .config import Config, load_config, with_overrides
from .errors import ConfigError, SkeletonMAEError
from .export import add_export_parser
from .viz_cli import add_visualize_parser


def _config_epilog() -> str:
    lines = ["configuration keys (override with section.key=value; values are YAML):"]
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            default = getattr(section.default_factory(), f.name)
            lines.append(f"  {section.name}.{f.name} = {default!r}")
    return "\n".join(lines)


def _training_parser(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=_config_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
    from .tasks.pretrain import run_pretrain

    run_pretrain(_load(args))
    return 0


def cmd_finetune(args) -> int:
    from .tasks.finetune import run_finetune

    run_finetune(_load(args, [f"finetune.pretrained={args.pretrained}"] if args.pretrained else []))
    return 0


def cmd_ablate(args) -> int:
    import shlex

    from .ablation import preset, run_ablation

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
    from .data.datamodule import SkeletonDataModule
    from .tasks.finetune import load_classifier, test_model

    model, cfg = load_classifier(args.checkpoint)
    overrides = list(args.overrides) + ([f"data.path={args.data}"] if args.data else [])
    cfg = with_overrides(cfg, overrides)
    out = Path(args.out or Path(args.checkpoint).resolve().parent.parent / "test")
    out.mkdir(parents=True, exist_ok=True)
    test_model(model, SkeletonDataModule(cfg, cfg.finetune.batch_size), out, {"checkpoint": str(args.checkpoint)},
               split=args.split)
    return 0


VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm")


def cmd_predict(args) -> int:
    import json

    import numpy as np

    from .data.annotations import load_annotations
    from .errors import DataError
    from .fileio import atomic_open
    from .inference import load

    predictor = load(args.checkpoint)
    path = Path(args.input)
    layout = args.layout
    if path.suffix == ".pkl":
        samples = load_annotations(path, layout=layout or predictor.cfg.data.layout).samples(args.split)
        results = predictor.predict_samples(samples, layout=layout, top_k=args.top_k)
    elif path.suffix == ".npy":
        keypoint = np.load(path, allow_pickle=False)
        score = np.load(args.score, allow_pickle=False) if args.score else None
        results = [{"frame_dir": path.stem, **predictor.predict(keypoint, score, args.img_shape, layout, args.top_k)}]
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        from .pose import extract_poses

        try:
            clip = extract_poses(path, max_persons=predictor.cfg.data.num_persons)
        except SkeletonMAEError as e:
            raise SkeletonMAEError(
                f"{e}\nOr in two steps: `.venv-pose/bin/python -m skeletonmae.pose {path} --out clip.pkl`, then "
                f"`skeletonmae predict --checkpoint {args.checkpoint} clip.pkl --layout coco17`."
            ) from e
        results = predictor.predict_samples([clip], layout="coco17", top_k=args.top_k)
        results[0].pop("label", None)
    else:
        raise DataError(f"{path}: unknown input kind '{path.suffix}'; give an annotation pickle (.pkl), an array "
                        f"[M, T, V, C] (.npy) or a video ({', '.join(VIDEO_SUFFIXES)})")
    for r in results[:10]:
        top = ", ".join(f"{name} {p:.3f}" for name, p in r["top"])
        print(f"{r['frame_dir']}: {top}")
    if len(results) > 10:
        print(f"... {len(results) - 10} more clips")
    labelled = [r for r in results if "label" in r]
    if labelled:
        acc = np.mean([int(np.argmax(r["scores"])) == r["label"] for r in labelled])
        print(f"top-1 against the file's labels: {acc:.4f} ({len(labelled)} clips)")
    with atomic_open(args.out, "w") as f:
        json.dump({"checkpoint": str(args.checkpoint), "input": str(path), "class_names": predictor.class_names,
                   "predictions": results}, f, indent=1)
    print(f"written: {args.out}")
    return 0


def cmd_data_check(args) -> int:
    from .data.check import check_file

    report, ok = check_file(args.file, layout=args.layout, num_classes=args.num_classes)
    print(report)
    return 0 if ok else 1


def cmd_data_demo(args) -> int:
    from .data.synthetic import write_demo_pickle

    path = write_demo_pickle(args.out, num_per_class=args.per_class, seed=args.seed)
    print(f"wrote {path}")
    return 0


def cmd_data_pool(args) -> int:
    from .data.pool import write_pool

    sources = []
    for spec in args.sources:
        path, sep, layout = spec.rpartition(":")
        if not sep or not path:
            raise ConfigError(f"source '{spec}': write it as PATH:LAYOUT, e.g. penn_action.pkl:penn13")
        sources.append((path, layout))
    if args.views is not None and args.views < 1:
        raise ConfigError(f"--views {args.views}: give the number of camera views of each 3D clip, 1 or more")
    if args.seed is not None and args.views is None:
        raise ConfigError("--seed draws the virtual cameras of --views; give --views N with it")
    path = write_pool(args.out, sources, args.layout, args.exclude, views=args.views, seed=args.seed or 0)
    print(f"wrote {path}; pre-train on it with data.path={path} data.layout={args.layout} 'pretrain.splits=[pool]'")
    return 0


def cmd_data_convert_ntu(args) -> int:
    from .data.ntu import convert_ntu

    path = convert_ntu(args.skeleton_dir, args.out, benchmark=args.benchmark, mode=args.mode,
                       max_persons=args.max_persons, missing_file_list=args.missing)
    print(f"wrote {path}; check it with: skeletonmae data check {path} --layout ntu25")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), quick=args.quick, resume=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skeletonmae",
        description="SkeletonMAE: graph-based masked autoencoder pre-training for skeleton action recognition "
        "(independent implementation of Yan et al., ICCV 2023).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _training_parser(sub, "pretrain", "pre-train SkeletonMAE on unlabelled skeleton clips (paper §3.1)").set_defaults(
        func=cmd_pretrain)
    p = _training_parser(sub, "finetune", "fine-tune the SSL classifier and test it (paper §3.2)")
    p.add_argument("--pretrained", metavar="CKPT", help="pre-training checkpoint, or 'none' to train from scratch")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("ablate", help="run a grid of overrides (pre-train + fine-tune each) as one table",
                       description="run the cells of an ablation (a paper preset or --cell lists), each pre-trained "
                       "and fine-tuned for every seed; resumes finished cells; writes results/ablation_NAME.json "
                       "and OUT/table.md", epilog=_config_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--split", help="split name (default: data.test_split)")
    p.add_argument("--out", metavar="DIR", help="where metrics.json and predictions.csv go")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("predict", help="classify pose sequences or a video with a fine-tuned checkpoint",
                       description="classify an annotation pickle, an array [M, T, V, C] (.npy) or a video (poses "
                       "from MediaPipe, see requirements-pose.txt) with a fine-tuned checkpoint; prints the top-k "
                       "classes and writes a JSON")
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("input", help=".pkl, .npy or a video file")
    p.add_argument("--layout", help="layout of the input (default: the one the model was trained on)")
    p.add_argument("--split", help="split of a .pkl input (default: every clip)")
    p.add_argument("--score", metavar="NPY", help="keypoint scores [M, T, V] for a 2D .npy input")
    p.add_argument("--img-shape", type=int, nargs=2, metavar=("H", "W"), help="frame size of a 2D .npy input")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--out", default="predictions.json", help="JSON output (default predictions.json)")
    p.set_defaults(func=cmd_predict)

    add_export_parser(sub)
    add_visualize_parser(sub)

    data = sub.add_parser("data", help="check, convert or generate annotation pickles",
                          description="check, convert or generate annotation pickles")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser("check", help="validate an annotation pickle and summarise it",
                        description="validate an annotation pickle and print a summary and every problem found; "
                        "exit code 0 when the file is usable")
    p.add_argument("file")
    p.add_argument("--layout", help="the layout the file should have (e.g. coco17, penn13, kinect20)")
    p.add_argument("--num-classes", type=int, help="labels must be below this")
    p.set_defaults(func=cmd_data_check)
    p = dsub.add_parser("demo", help="write the embedded synthetic demo dataset as a pickle",
                        description="write the embedded synthetic COCO-17 demo dataset as an annotation pickle")
    p.add_argument("out", help="output .pkl path")
    p.add_argument("--per-class", type=int, default=40, help="clips per class (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data_demo)

    p = dsub.add_parser("pool", help="pool several pickles, mapped to one layout, as a pre-training corpus",
                        description="map the joints of several annotation pickles to one layout and write them as "
                        "one pickle; split 'pool' holds every clip outside the --exclude splits. 3D clips join a "
                        "2D pool (2D and 3D sources mixed) as one orthographic front view each, or with --views N "
                        "as N views through random virtual cameras, named DATASET/CLIP/view0..view{N-1}")
    p.add_argument("out", help="output .pkl path")
    p.add_argument("sources", nargs="+", metavar="PATH:LAYOUT", help="a source pickle and its layout")
    p.add_argument("--layout", default="coco17", help="the layout of the pool (default coco17)")
    p.add_argument("--exclude", nargs="*", default=[], metavar="DATASET/SPLIT",
                   help="splits kept out of 'pool' (e.g. penn_action/test); DATASET is the pickle's file name")
    p.add_argument("--views", type=int, metavar="N",
                   help="each 3D clip joins as N views (N >= 1) through random virtual cameras: azimuth within "
                   "+-90 deg, elevation -10..30 deg, 3-6 m away, perspective, 640x480 frame, pixel noise, detector "
                   "scores, 2%% missed joints (skeletonmae/data/views.py); the pool is then 2D even if every "
                   "source is 3D. Default: one orthographic front view each, and only when 2D and 3D are mixed")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the --views cameras (default 0)")
    p.set_defaults(func=cmd_data_pool)

    convert = dsub.add_parser("convert", help="convert other formats to annotation pickles",
                              description="convert other formats to annotation pickles")
    csub = convert.add_subparsers(dest="convert_command", metavar="FORMAT", required=True)
    p = csub.add_parser("ntu", help="NTU RGB+D raw .skeleton files",
                        description="convert a folder of NTU RGB+D .skeleton files (3D joints, or 2D colour "
                        "coordinates) with the standard splits (NTU-60 xsub/xview, NTU-120 xsub/xset)")
    p.add_argument("skeleton_dir")
    p.add_argument("out", help="output .pkl path")
    p.add_argument("--benchmark", choices=["ntu60", "ntu120"], default="ntu60")
    p.add_argument("--mode", choices=["3d", "2d"], default="3d")
    p.add_argument("--max-persons", type=int, default=2)
    p.add_argument("--missing", metavar="FILE", help="text file listing samples to skip (one name per line)")
    p.set_defaults(func=cmd_data_convert_ntu)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded demo data",
                       description="generate the demo data, pre-train, fine-tune with and without pre-training, "
                       "and test: the main job at a small CPU budget")
    p.add_argument("--out", default="runs/demo", metavar="DIR")
    p.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SkeletonMAEError as e:
        if args.debug:
            traceback.print_exc()
        print(f"skeletonmae: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("skeletonmae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
