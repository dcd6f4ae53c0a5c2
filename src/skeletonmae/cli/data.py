"""The ``data`` commands: check, generate (demo), pool and convert annotation pickles; print a layout file."""

from __future__ import annotations

import argparse

from ..errors import ConfigError


def cmd_data_check(args) -> int:
    from ..data.check import check_file

    report, ok = check_file(args.file, layout=args.layout, num_classes=args.num_classes)
    print(report)
    return 0 if ok else 1


def cmd_data_demo(args) -> int:
    from ..data.synthetic import write_demo_pickle
    from ..fileio import check_output

    check_output(args.out)
    path = write_demo_pickle(args.out, num_per_class=args.per_class, seed=args.seed)
    print(f"wrote {path}")
    return 0


def cmd_data_layout(args) -> int:
    from ..fileio import atomic_open, check_output
    from ..skeleton import layout_yaml

    text = layout_yaml(args.layout)
    if args.out is None:
        print(text, end="")
        return 0
    check_output(args.out, [args.layout])
    with atomic_open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}; edit it (the name first) and pass it as --layout {args.out} or data.layout={args.out}")
    return 0


def cmd_data_pool(args) -> int:
    from ..data.pool import write_pool
    from ..fileio import check_output

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
    check_output(args.out, [p for p, _ in sources])
    path = write_pool(args.out, sources, args.layout, args.exclude, views=args.views, seed=args.seed or 0)
    print(f"wrote {path}; pre-train on it with data.path={path} data.layout={args.layout} 'pretrain.splits=[pool]'")
    return 0


def cmd_data_convert_ntu(args) -> int:
    from ..data.ntu import convert_ntu
    from ..fileio import check_output

    check_output(args.out, [args.skeleton_dir] + ([args.missing] if args.missing else []))
    path = convert_ntu(args.skeleton_dir, args.out, benchmark=args.benchmark, mode=args.mode,
                       max_persons=args.max_persons, missing_file_list=args.missing)
    print(f"wrote {path}; check it with: skeletonmae data check {path} --layout ntu25")
    return 0


def cmd_data_convert_clips(args) -> int:
    """``data convert arrays`` and ``data convert openpose``."""
    from ..data.arrays import convert_arrays
    from ..data.openpose import convert_openpose
    from ..fileio import check_output

    check_output(args.out, [args.source] + ([args.labels] if args.labels else []))
    options = {"labels_csv": args.labels, "layout": args.layout, "img_shape": args.img_shape,
               "test_fraction": args.test_fraction, "seed": args.seed}
    if args.convert_command == "openpose":
        path, label_map = convert_openpose(args.source, args.out, **options)
    else:
        path, label_map = convert_arrays(args.source, args.out, score_channel=args.score, **options)
    check = f" --layout {args.layout}" if args.layout else ""
    print(f"wrote {path} and {label_map}; check it with: skeletonmae data check {path}{check}")
    return 0


def _add_clip_options(p: argparse.ArgumentParser) -> None:
    """The options ``data convert arrays`` and ``data convert openpose`` share: output, labels, splits, checks."""
    p.add_argument("out", help="output .pkl path (label_map.txt is written beside it)")
    p.add_argument("--labels", metavar="CSV", help="a CSV with a header row and the columns clip,label and "
                   "optionally split (else: labels from folder names, and a random split)")
    p.add_argument("--layout", help="check the clips against this layout (a built-in name or a layout file): "
                   "joint count and fit (as data check does)")
    p.add_argument("--img-shape", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                   help="2D: the frame size the pixel coordinates refer to (1 1 for coordinates in 0..1)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="without a split column: share of each class's clips put in split 'test', the rest in "
                   "'train' (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of that random split (default 0)")
    p.set_defaults(func=cmd_data_convert_clips)


def add_data_parser(sub) -> argparse.ArgumentParser:
    """Add the ``data`` command (check, demo, layout, pool, convert ntu|arrays) to a CLI's subparsers."""
    data = sub.add_parser("data", help="check, convert or generate annotation pickles; print layout files",
                          description="check, convert or generate annotation pickles; print layout files")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = dsub.add_parser("check", help="validate an annotation pickle and summarise it",
                        description="validate an annotation pickle and print a summary and every problem found; "
                        "exit code 0 when the file is usable")
    p.add_argument("file")
    p.add_argument("--layout", help="the layout the file should have: a built-in name (e.g. coco17, penn13, "
                   "kinect20) or a layout YAML file")
    p.add_argument("--num-classes", type=int, help="labels must be below this")
    p.set_defaults(func=cmd_data_check)
    p = dsub.add_parser("demo", help="write the embedded synthetic demo dataset as a pickle",
                        description="write the embedded synthetic COCO-17 demo dataset as an annotation pickle")
    p.add_argument("out", help="output .pkl path")
    p.add_argument("--per-class", type=int, default=40, help="clips per class (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data_demo)
    p = dsub.add_parser("layout", help="print a layout as a layout file, to start your own from",
                        description="print a layout (a built-in name or a layout file, checked) as a YAML layout "
                        "file: joints, bones, centre, the six body regions, left-right twins")
    p.add_argument("layout", help="a built-in layout (coco17, penn13, jhmdb15, kinect20, florence15, ntu25, "
                   "openpose18, ...) or a layout file")
    p.add_argument("--out", help="write it to this file instead of printing it")
    p.set_defaults(func=cmd_data_layout)

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
    p = csub.add_parser("arrays", help="plain .npy/.npz arrays of joints",
                        description="convert plain numpy arrays of joints: a folder of .npy/.npz clip files "
                        "([T, V, C] or [M, T, V, C]; a clip is named by its path below the folder, without the "
                        "suffix) or one stacked file ([N, T, V, C] or [N, M, T, V, C]; clip i is named i). C = 2 "
                        "(x, y pixels) or 3 (x, y, z), or (x, y, score) with --score; NaN marks a missing joint. "
                        "Labels from --labels CSV or the folder each clip file sits in; class names are numbered "
                        "in sorted order and written to label_map.txt beside OUT")
    p.add_argument("source", help="a folder of clip files, or one stacked .npy/.npz file")
    _add_clip_options(p)
    p.add_argument("--score", action="store_true", help="C = 3 is (x, y, score), a pose estimator's output")
    p = csub.add_parser("openpose", help="OpenPose per-frame JSON files",
                        description="convert OpenPose's --write_json output: one folder of per-frame JSON files per "
                        "clip (named by its path below SOURCE), pose_keypoints_2d as (x, y, confidence). Labels "
                        "from --labels CSV or the folder each clip folder sits in; as `data convert arrays` "
                        "otherwise. OpenPose does not track people: person i is the i-th of each frame's list")
    p.add_argument("source", help="the folder holding the clips' folders of JSON files")
    _add_clip_options(p)
    return data
