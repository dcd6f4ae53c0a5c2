"""ONNX export of the fine-tuned classifier: a valid graph, PyTorch parity at any batch size, the CLI glue."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import shared_pickle

from skeletonmae.cli.export import add_export_parser
from skeletonmae.config import load_config
from skeletonmae.data.annotations import load_annotations
from skeletonmae.data.dataset import config_pipeline
from skeletonmae.errors import ConfigError
from skeletonmae.export import benchmark_latency, export_onnx, onnx_parity, read_metadata
from skeletonmae.inference import load
from skeletonmae.models.build import build_classifier, load_classifier

SHAPE = (2, 16, 17, 2)  # P, T, V, C


@pytest.fixture(scope="module", params=[["classifier.pool=mean"], ["classifier.pool=joint_stats"],
                                        ["classifier.pool=joint_stats", "classifier.rezero=true",
                                         "classifier.drop_path=0.5"]],
                ids=["mean", "joint_stats", "rezero"])
def exported(tmp_path_factory, request):
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16", "encoder.dim=16", "classifier.strl_layers=2", *request.param])
    model = build_classifier(cfg, 2, 5)
    for layer in model.layers:
        if layer.gate is not None:
            torch.nn.init.constant_(layer.gate, 0.5)  # a branch that counts, so that parity tests it
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "sub" / "model.onnx", torch.randn(2, *SHAPE))
    return model, path


def test_export_is_a_valid_graph(exported):
    model, path = exported
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name != "model.onnx"]  # no temp files left
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "skeleton" and out.name == "logits"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", *SHAPE]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 5]


@pytest.mark.parametrize("batch", [1, 3])
def test_parity_with_dynamic_batch_and_absent_person(exported, batch):
    model, path = exported
    x = torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(batch))
    assert onnx_parity(model, path, x) < 1e-4
    x[:, 1] = 0  # the second person is absent in every sample
    assert onnx_parity(model, path, x) < 1e-4
    x[0, 0, 10:] = 0  # and the first one leaves the scene early
    assert onnx_parity(model, path, x) < 1e-4


def test_export_keeps_training_mode_and_rejects_bad_examples(tmp_path):
    model = build_classifier(load_config(None, ["data.clip_len=8", "encoder.dim=8", "classifier.strl_layers=1"]), 2, 3)
    model.train()
    export_onnx(model, tmp_path / "m.onnx", torch.randn(1, 2, 8, 17, 2))
    assert model.training
    with pytest.raises(ConfigError, match=r"\[N, P, T, V, C\]"):
        export_onnx(model, tmp_path / "bad.onnx", torch.randn(2, 8, 17, 2))
    assert not (tmp_path / "bad.onnx").exists()


def test_benchmark_latency_reports_positive_times(exported):
    model, path = exported
    lat = benchmark_latency(model, path, torch.randn(2, *SHAPE), repeats=2)
    assert set(lat) == {"torch_ms_b1", "ort_ms_b1", "torch_ms_b64", "ort_ms_b64", "threads"}
    assert all(lat[k] > 0 for k in lat)
    assert lat["threads"] == torch.get_num_threads()


def test_cli_round_trip_from_finetune_checkpoint(tmp_path, capsys):
    from skeletonmae.cli import main

    data = shared_pickle("penn_action")
    assert main(["finetune", "--config", "penn_action", "--out", str(tmp_path), f"data.path={data}",
                 "data.clip_len=8", "data.test_clips=1", "data.num_workers=0", "encoder.dim=16",
                 "encoder.layers=2", "classifier.strl_layers=1", "finetune.epochs=1", "finetune.batch_size=16",
                 "finetune.warmup_epochs=0", "trainer.limit_train_batches=2", "trainer.progress=false"]) == 0
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command", required=True))

    capsys.readouterr()
    args = parser.parse_args(["export", "--checkpoint", str(ckpt), "--repeats", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "parity" in out and "onnxruntime" in out
    path = ckpt.parent / "model.onnx"
    onnx.checker.check_model(onnx.load(str(path)))
    model, cfg = load_classifier(ckpt)
    x = torch.randn(4, cfg.data.num_persons, 8, 17, model.encoder.in_channels)
    assert onnx_parity(model, path, x) < 1e-4

    # the metadata say what the input is; following them on a real clip gives the package's own prediction
    meta = read_metadata(path)
    assert json.loads(meta["class_names"])[:2] == ["baseball_pitch", "baseball_swing"]  # data/label_map.txt
    assert meta["layout"] == "coco17" and json.loads(meta["joints"])[:2] == ["nose", "left_eye"]
    assert json.loads(meta["channels"]) == ["x", "y", "dx", "dy"] and meta["normalize"] == "body"  # penn_action
    assert meta["input"].startswith("skeleton: float32 [batch, 1, 8, 17, 4]")
    assert "median torso length (mid-shoulder to mid-hip) is 0.35" in meta["preprocessing"]
    assert json.loads(meta["data_config"])["layout"] == "penn13"
    clip = load_annotations(data).samples("test")[0]
    inputs = config_pipeline(cfg, False, train=False)(clip, np.random.default_rng(0))["keypoint"]  # [K, P, T, V, C]
    logits = onnxruntime.InferenceSession(str(path)).run(["logits"], {"skeleton": inputs})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs = (probs / probs.sum(1, keepdims=True)).mean(0)
    expected = load(ckpt).predict(clip["keypoint"], clip["keypoint_score"], clip["img_shape"], layout="penn13")
    assert probs == pytest.approx(expected["scores"], abs=1e-5)

    other = tmp_path / "exports" / "penn.onnx"
    args = parser.parse_args(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(other),
                              "--batch", "1", "--no-check"])
    assert args.func(args) == 0
    assert other.is_file() and "parity" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "--checkpoint", str(ckpt), "--format", "tflite"])
