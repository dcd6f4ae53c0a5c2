"""The ``export`` command: a fine-tuned checkpoint to ONNX, its parity with PyTorch and the latency of both."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..export import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    benchmark_latency,
    example_input,
    export_onnx,
    exportable,
    model_metadata,
    onnx_parity,
)
from . import count


def cmd_export(args) -> int:
    from ..fileio import check_output
    from ..models.build import class_names, load_checkpoint, load_classifier

    if args.opset is not None and not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise ConfigError(f"--opset {args.opset}: the exporter writes opsets {MIN_OPSET} to {MAX_OPSET}")
    out = check_output(Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "model.onnx",
                       [args.checkpoint])
    ckpt = load_checkpoint(args.checkpoint)
    classifier, cfg = load_classifier(ckpt)
    model = exportable(classifier, cfg)
    export_onnx(model, out, example_input(classifier, cfg, args.batch), opset=args.opset,
                metadata=model_metadata(classifier, cfg, class_names(ckpt)))
    print(f"wrote {out} (its metadata_props hold the class names, joint layout, channels and preprocessing)")
    if args.no_check:
        return 0
    check = example_input(classifier, cfg, args.batch + 1, seed=1)  # another batch size: the batch axis is dynamic
    print(f"parity (max |logits torch - onnxruntime|, batch {len(check)}): {onnx_parity(model, out, check):.3g}")
    lat = benchmark_latency(model, out, check, repeats=args.repeats)
    print(f"latency, median ms per batch ({lat['threads']} thread(s), {args.repeats} runs):")
    print(f"  {'batch':>5}  {'eager':>9}  {'onnxruntime':>11}")
    for n in (1, 64):
        print(f"  {n:>5}  {lat[f'torch_ms_b{n}']:>9.2f}  {lat[f'ort_ms_b{n}']:>11.2f}")
    return 0


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to an argparse subparsers object; returns its parser."""
    desc = ("export a fine-tuned classifier to ONNX (input 'skeleton' [batch, P, T, V, C], output 'logits'; the "
            "class names, joint layout, channels and preprocessing in its metadata_props), then compare it with "
            "PyTorch and time both")
    p = subparsers.add_parser("export", help="export a fine-tuned checkpoint to ONNX", description=desc)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="fine-tuning checkpoint")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default onnx)")
    p.add_argument("--out", metavar="PATH", help="output file (default: model.onnx beside the checkpoint)")
    p.add_argument("--batch", type=count, default=2, help="batch size of the example input (default 2)")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--repeats", type=count, default=20, help="timed runs per latency measurement (default 20)")
    p.add_argument("--no-check", action="store_true", help="skip the parity check and the latency table")
    p.set_defaults(func=cmd_export)
    return p
