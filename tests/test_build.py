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
    load_checkpoint,
    load_classifier,
    load_encoder,
    load_pretrained,
    save_encoder,
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
    encoder = load_encoder(FIXTURES / "v0_pretrain.ckpt")
    assert encoder.differences(load_config(None, ["encoder.dim=8", "encoder.layers=1"]), 2)[0] == []
    clf.load_pretrained(encoder.state, "first")
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


def test_encoder_files_round_trip_and_fit_by_encoder_config_equality(tmp_path, monkeypatch):
    from skeletonmae.models import build

    path = save_encoder(FIXTURES / "v0_pretrain.ckpt", tmp_path / "tiny_2d.pt", {"corpus": "demo"})
    encoder = load_encoder(path)
    old = load_encoder(FIXTURES / "v0_pretrain.ckpt")
    assert encoder.config == old.config and encoder.in_channels == 2 and encoder.card == {"corpus": "demo"}
    assert all(torch.equal(v, old.state[k]) for k, v in encoder.state.items())
    cfg = load_config(None, ["encoder.dim=8", "encoder.layers=1", "data.normalize=auto"])
    assert encoder.differences(cfg, 2) == ([], [])
    fit, data = encoder.differences(load_config(None, ["encoder.dim=8", "encoder.layers=2"]), 3)
    assert fit == ["encoder.layers: encoder 1, config 2", fit[1]] and "encoder C = 2, data C = 3" in fit[1]
    assert data == ["data.normalize: encoder 'auto', config 'fix'"]
    monkeypatch.setattr(build, "ENCODERS", tmp_path)
    assert build.find_packaged_encoder(cfg, 2)[0].name == "tiny_2d"
    found, why = build.find_packaged_encoder(load_config(None, ["encoder.dim=8", "encoder.layers=1"]), 2)
    assert found is None and "'tiny_2d' differs in data.normalize" in why
    with pytest.raises(CheckpointError, match="is a fine-tuned classifier"):
        load_encoder(FIXTURES / "v0_finetune.ckpt")


def test_new_checkpoints_record_their_format(tmp_path):
    from skeletonmae.tasks.finetune import FinetuneTask

    task = FinetuneTask(load_config(None, ["encoder.dim=8", "data.clip_len=8"]).to_dict(), 2, 3)
    assert task.hparams["format"] == FORMAT
