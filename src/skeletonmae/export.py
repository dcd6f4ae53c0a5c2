"""Export a fine-tuned SSL classifier to ONNX, check it against PyTorch, and time both.

The graph has one input ``skeleton`` [batch, P, T, V, C] (float32, batch dynamic; P, T, V, C fixed by the
example) and one output ``logits`` [batch, classes]. A model of an input stream other than joints
(``data.stream``) takes joint coordinates and computes its stream in the graph (:func:`exportable`). Absent
persons are all-zero slots, exactly as in PyTorch: the presence mask is computed inside the graph, so no side
input is needed. The file's
``metadata_props`` (:func:`model_metadata`) carry the class names, the joint layout, the input channels and the
preprocessing that turns a pose sequence into the input, so the file can be used without this package.

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). The torch.export-based
exporter (the default since PyTorch 2.9) needs ``onnxscript``, which is not a dependency. The tracer warns
about ``p > 1`` in ``SpatialModelling``: P is fixed in the exported graph, so that branch is a constant and
the warning is harmless (it is silenced here).
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .fileio import atomic_open

if TYPE_CHECKING:  # torch is imported where it is used, so that building the CLI parser stays fast
    import torch
    from torch import nn

INPUT_NAME, OUTPUT_NAME = "skeleton", "logits"
DEFAULT_OPSET = 17  # widely supported by ONNX runtimes
MIN_OPSET, MAX_OPSET = 9, 20  # what the TorchScript exporter writes for this model (scaled dot products, ... need 9)


class _eval_mode:
    """Put a module in eval mode for a block and restore its previous mode afterwards."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc) -> None:
        self.model.train(self.was_training)


def _check_input(x: torch.Tensor, name: str) -> None:
    import torch

    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{name} must be a tensor [N, P, T, V, C], got {shape}")


def export_onnx(model: nn.Module, path: str | Path, example: torch.Tensor, opset: int | None = None,
                metadata: dict[str, str] | None = None) -> Path:
    """Export ``model`` (in eval mode) to ONNX at ``path`` (written atomically) and validate it; returns the path.

    ``example`` [N, P, T, V, C] fixes P, T, V, C; the batch axis stays dynamic. The model is moved to the CPU
    (ONNX Runtime runs there too) and keeps its train/eval mode. ``metadata`` (e.g. :func:`model_metadata`)
    goes into the file's ``metadata_props``.
    """
    import onnx
    import torch

    _check_input(example, "example")
    path = Path(path)
    example = example.detach().to("cpu", torch.float32)
    buf = io.BytesIO()
    with _eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*The feature will be removed.*")
        try:
            torch.onnx.export(
                model.cpu(), (example,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset or DEFAULT_OPSET, do_constant_folding=True, dynamo=False,
            )
        except (RuntimeError, ValueError, torch.onnx.errors.OnnxExporterError) as e:
            raise ConfigError(f"ONNX export at opset {opset or DEFAULT_OPSET} failed "
                              f"({str(e).splitlines()[0][:200]}); the default opset {DEFAULT_OPSET} works") from e
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, metadata or {})
    onnx.checker.check_model(proto, full_check=True)
    with atomic_open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, as a dict (what :func:`model_metadata` wrote)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _normalisation(cfg, layout, coords: int) -> str:
    """How the coordinates the model was trained on were normalised, in words (data/transforms.py)."""
    from .data.transforms import BODY_TORSO_2D, BODY_TORSO_3D

    d = cfg.data
    torso = BODY_TORSO_3D if coords == 3 else BODY_TORSO_2D
    body = (f"centre on the first person's mean mid-hip point over the clip and scale so that its median torso "
            f"length (mid-shoulder to mid-hip) is {torso}")
    if coords == 3:
        rms = (f"centre on the mean position of joint '{layout.joints[layout.center]}' of the first person and "
               "divide by the root-mean-square distance of the present joints from it")
        return (f"{body} (as the default where no frame shows both shoulders and hips: {rms})"
                if d.normalize == "body" else rms)
    auto = (f"centre on the box around the clip's joints of score > {d.score_threshold} and divide by half its "
            "longer side")
    how = {"fix": "x' = (x - w/2) / (w/2), y' = (y - h/2) / (h/2), (h, w) the frame size in pixels", "auto": auto,
           "body": f"{body} (where no frame shows both shoulders and hips: {auto})"}[d.normalize]
    return f"{how}; joints of score <= {d.score_threshold} become 0"


STREAM_WORDS = {"bone": "bone vectors (each joint minus its parent joint in 'bone_parents')",
                "joint_motion": "joint velocity (each joint's position in the next frame minus this one, 0 at the "
                                "last frame and where the joint is absent)",
                "bone_motion": "bone velocity (the bone vectors' next frame minus this one)"}


def exportable(classifier: nn.Module, cfg) -> nn.Module:
    """The module to export: ``classifier`` itself (its input: the channels of ``cfg.data``), or for an input
    stream other than joints the classifier behind the stream's computation, so the graph takes joints and
    computes bones / velocities as the data pipeline did (:class:`~skeletonmae.models.stream_input.StreamInput`)."""
    if cfg.data.stream == "joint":
        return classifier
    from .models.stream_input import StreamInput

    return StreamInput(classifier, cfg)


def graph_channels(classifier: nn.Module, cfg) -> list[str]:
    """The channels of the exported graph's input, by name (:func:`exportable`)."""
    d = cfg.data
    axes = ["x", "y", "z"][:d.coordinates(classifier.encoder.in_channels)]
    if d.stream != "joint":  # the graph computes every derived channel itself
        return axes + ["score"] * d.use_score
    return axes + [f"d{a}" for a in axes] * d.motion + [f"bone_{a}" for a in axes] * d.bone + ["score"] * \
        d.use_score


def _channel_step(cfg) -> str:
    """The preprocessing step that makes the input channels, in words."""
    d = cfg.data
    if d.stream != "joint":
        derived = [f"the {d.stream} stream: {STREAM_WORDS[d.stream]}"]
        derived += ["their frame-to-frame velocity"] * d.motion + ["their bone vectors"] * d.bone
        return ("channels in the order of 'channels' (joint coordinates); the graph computes from them "
                + ", then ".join(derived) + ", as in training")
    return ("channels in the order of 'channels'" + ("; d* = the joint's position in the next frame minus this "
                                                     "one (0 at the last frame and where the joint is absent)"
                                                     if d.motion else "")
            + ("; bone_* = the joint minus its parent joint in 'bone_parents'" if d.bone else ""))


def model_metadata(model: nn.Module, cfg, class_names: list[str] | None) -> dict[str, str]:
    """What a user of the exported ``model`` (the classifier, before :func:`exportable`) needs besides the graph:
    class names, the joint layout, the input's channels and the preprocessing that makes it (values are strings;
    lists and mappings as JSON)."""
    import json

    from . import __version__

    layout, d = model.encoder.layout, cfg.data
    coords = d.coordinates(model.encoder.in_channels)
    channels = graph_channels(model, cfg)
    names = class_names or [f"class {i}" for i in range(model.num_classes)]
    shape = [d.num_persons, d.clip_len, layout.num_joints, len(channels)]
    steps = [
        f"joints in the order of 'joints' (layout {layout.name}); a joint your data lack is 0 (score 0)",
        f"the {d.num_persons} person(s) with the highest total joint score, then all-zero persons up to "
        f"{d.num_persons}",
        f"{d.clip_len} frames: the clip cut into {d.clip_len} equal segments, one frame from each; {d.test_clips} "
        "clip(s) per sample at evenly spaced offsets within the segments; a shorter clip is looped",
        f"coordinates: {_normalisation(cfg, layout, coords)}",
        *(["a mirrored copy of every clip added (x -> -x, each left joint swapped with its right twin)"]
          if d.test_flip else []),
        _channel_step(cfg),
        f"output 'logits' [batch, {len(names)}]: softmax, averaged over the clips of a sample",
    ]
    meta = {
        "producer": f"skeletonmae {__version__}",
        "class_names": json.dumps(names),
        "layout": layout.name,
        "joints": json.dumps(list(layout.joints)),
        "input": f"{INPUT_NAME}: float32 [batch, {', '.join(map(str, shape))}] = [batch, persons, frames, "
                 "joints, channels]",
        "channels": json.dumps(channels),
        "normalize": d.normalize,
        "stream": d.stream,
        "preprocessing": "; ".join(f"{i + 1}. {step}" for i, step in enumerate(steps)),
        "data_config": json.dumps({k: getattr(d, k) for k in ("layout", "clip_len", "num_persons", "test_clips",
                                                                "normalize", "score_threshold", "use_score",
                                                                "stream", "motion", "bone", "test_flip")}),
    }
    if d.bone or d.stream.startswith("bone"):
        meta["bone_parents"] = json.dumps([int(p) for p in layout.parents()])
    return meta


def _session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_parity(model: nn.Module, path: str | Path, inputs: torch.Tensor) -> float:
    """Max absolute difference between the logits of PyTorch (eval mode, CPU) and ONNX Runtime on ``inputs``."""
    import torch

    _check_input(inputs, "inputs")
    x = inputs.detach().to("cpu", torch.float32)
    with _eval_mode(model), torch.no_grad():
        ref = model.cpu()(x)
    out = _session(path).run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    return float((torch.from_numpy(out) - ref).abs().max())


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, ORT's first-run graph preparation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def benchmark_latency(model: nn.Module, path: str | Path, example: torch.Tensor, repeats: int = 20) -> dict:
    """Median milliseconds per batch of eager PyTorch and ONNX Runtime at batch 1 and 64, on the same threads.

    Inputs are random with the example's [P, T, V, C]. Returns ``torch_ms_b1``, ``ort_ms_b1``,
    ``torch_ms_b64``, ``ort_ms_b64`` and ``threads`` (torch.get_num_threads(), also ORT's intra-op threads).
    """
    import torch

    _check_input(example, "example")
    threads = torch.get_num_threads()
    sess = _session(path, threads)
    gen = torch.Generator().manual_seed(0)
    report: dict = {}
    with _eval_mode(model), torch.no_grad():
        model.cpu()
        for n in (1, 64):
            x = torch.randn(n, *example.shape[1:], generator=gen)
            feed = {INPUT_NAME: x.numpy()}
            report[f"torch_ms_b{n}"] = _median_ms(lambda x=x: model(x), repeats)
            report[f"ort_ms_b{n}"] = _median_ms(lambda feed=feed: sess.run([OUTPUT_NAME], feed), repeats)
    report["threads"] = threads
    return report


def example_input(model: nn.Module, cfg, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random [batch, P, T, V, C] input of the exported graph of the classifier ``model`` built from ``cfg``
    (C: :func:`graph_channels`); the last sample's other persons are absent (all zero), as in real two-person
    data with one actor."""
    import torch

    shape = (batch, cfg.data.num_persons, cfg.data.clip_len, model.encoder.layout.num_joints,
             len(graph_channels(model, cfg)))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    x[-1, 1:] = 0
    return x
