"""Building and loading models (models/build.py): checkpoints of every format, and what loading refuses."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skeletonmae.config import load_config
from skeletonmae.errors import CheckpointError
from skeletonmae.models.build import (
    FORMAT,
    build_classifier,
    check_encoder_fits,
    load_checkpoint,
    load_classifier,
    load_pretrained,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_checkpoints_written_before_the_joint_encoder_load_and_give_the_same_numbers():
    """tests/fixtures/README.md says how the format-0 checkpoints and their outputs were made."""
    expected = np.load(FIXTURES / "v0_outputs.npz")
    x = torch.from_numpy(expected["x"])
    model, cfg = load_classifier(FIXTURES / "v0_finetune.ckpt")
    assert (cfg.encoder.dim, cfg.classifier.strl_layers, cfg.classifier.rezero) == (8, 2, True)  # flat keys read
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), expected["logits"], rtol=0, atol=1e-6)
    pre, pre_cfg = load_pretrained(FIXTURES / "v0_pretrain.ckpt")
    with torch.no_grad():
        np.testing.assert_allclose(pre.encode(x).numpy(), expected["encoded"], rtol=0, atol=1e-6)
    # an old pre-training checkpoint still serves as the pre-trained encoder of a new classifier
    clf = build_classifier(load_config(None, ["encoder.dim=8", "encoder.layers=1", "data.clip_len=8"]), 2, 4)
    check_encoder_fits(pre_cfg.encoder, pre.in_channels, pre_cfg, 2, "v0")
    clf.load_pretrained(pre.encoder_state(), "first")
    assert torch.equal(clf.encoder.embed.weight, pre.encoder.embed.weight)


def test_importing_inference_needs_no_lightning():
    code = "import sys, skeletonmae.inference, skeletonmae.export, skeletonmae.viz; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _saved(tmp_path, ckpt: dict, name="c.ckpt") -> Path:
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


def test_loading_refuses_damaged_or_misused_checkpoints(tmp_path):
    ft = load_checkpoint(FIXTURES / "v0_finetune.ckpt")
    with pytest.raises(CheckpointError, match="is a fine-tuned classifier, not a pre-training checkpoint"):
        load_pretrained(ft)
    with pytest.raises(CheckpointError, match="not a SkeletonMAE fine-tuning checkpoint"):
        load_classifier(load_checkpoint(FIXTURES / "v0_pretrain.ckpt"))
    nan = {**ft, "state_dict": dict(ft["state_dict"])}
    key = next(k for k in nan["state_dict"] if k.endswith("head.2.weight") or k.endswith("weight"))
    nan["state_dict"][key] = torch.full_like(nan["state_dict"][key], float("nan"))
    with pytest.raises(CheckpointError, match="holds NaN/inf weights"):
        load_classifier(_saved(tmp_path, nan))
    tampered = {**ft, "hyper_parameters": {**ft["hyper_parameters"], "num_classes": 99}}
    with pytest.raises(CheckpointError, match="do not fit the model its own config describes"):
        load_classifier(_saved(tmp_path, tampered))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_classifier(tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError, match="is not a SkeletonMAE checkpoint"):
        load_classifier(_saved(tmp_path, [1, 2]))
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.ckpt")


def test_encoder_fit_is_encoder_config_equality():
    cfg = load_config(None, ["encoder.dim=8"])
    check_encoder_fits(cfg.encoder, 2, cfg, 2, "x")
    with pytest.raises(CheckpointError, match="encoder.layers: checkpoint 3, config 2"):
        check_encoder_fits(cfg.encoder, 2, load_config(None, ["encoder.dim=8", "encoder.layers=2"]), 2, "x")
    with pytest.raises(CheckpointError, match="C = 2 input channels; this data gives C = 3"):
        check_encoder_fits(cfg.encoder, 2, cfg, 3, "x")


def test_new_checkpoints_record_their_format(tmp_path):
    from skeletonmae.tasks.finetune import FinetuneTask

    task = FinetuneTask(load_config(None, ["encoder.dim=8", "data.clip_len=8"]).to_dict(), 2, 3)
    assert task.hparams["format"] == FORMAT
