"""Input streams (data.stream): values checked by hand on a tiny skeleton, absent joints and persons, the config
boundary, and the stream kept by checkpoints: predict and the ONNX export compute it as training did."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.config import load_config
from skeletonmae.data.annotations import load_annotations
from skeletonmae.data.dataset import SkeletonData, config_pipeline
from skeletonmae.data.transforms import FormatChannels, input_stream
from skeletonmae.errors import ConfigError
from skeletonmae.export import read_metadata
from skeletonmae.inference import load
from skeletonmae.models.build import load_classifier

RNG = np.random.default_rng(0)
PARENTS = [0, 0, 1]  # a chain 0 <- 1 <- 2; joint 0 is the centre (its own parent)
# [P=2, T=3, V=3, C=2]: person 0 lacks joint 0 at t = 1; person 1 is absent (all zero)
ONE = np.array([[[1, 1], [2, 0], [4, 4]],
                [[0, 0], [2, 2], [3, 5]],
                [[1, 2], [3, 3], [5, 6]]], np.float32)
KP = np.stack([ONE, np.zeros_like(ONE)])

EXPECTED = {  # person 0, by hand: [T, V, C]
    "joint": ONE,
    # joint minus parent; 0 where it or its parent is absent; the centre's bone is 0
    "bone": [[[0, 0], [1, -1], [2, 4]],
             [[0, 0], [0, 0], [1, 3]],
             [[0, 0], [2, 1], [2, 3]]],
    # x_{t+1} - x_t; 0 where either frame lacks the joint, and at the last frame
    "joint_motion": [[[0, 0], [0, 2], [-1, 1]],
                     [[0, 0], [1, 1], [2, 1]],
                     [[0, 0], [0, 0], [0, 0]]],
    # the bones' x_{t+1} - x_t; joints 0, 1 have no bone at t = 1
    "bone_motion": [[[0, 0], [0, 0], [-1, -1]],
                    [[0, 0], [0, 0], [1, 0]],
                    [[0, 0], [0, 0], [0, 0]]],
}


@pytest.mark.parametrize("stream", list(EXPECTED))
def test_stream_values_by_hand_and_an_absent_person_stays_zero(stream):
    values, present = input_stream(KP, stream, PARENTS)
    assert values.shape == KP.shape and present.shape == (*KP.shape[:-1], 1)
    np.testing.assert_array_equal(values[0], EXPECTED[stream])
    assert not values[1].any() and not present[1].any()


@pytest.mark.parametrize("stream", list(EXPECTED))
def test_format_channels_keeps_the_channel_count_and_appends_the_streams_velocity(stream):
    ann = {"keypoint": KP[None], "keypoint_score": np.ones(KP.shape[:-1], np.float32)[None]}  # [K=1, P, T, V, C]
    out = FormatChannels(use_score=True, motion=True, stream=stream, parents=PARENTS)(ann, RNG)["keypoint"]
    assert out.shape == (1, 2, 3, 3, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0, ..., :2], EXPECTED[stream])
    values, present = input_stream(KP, stream, PARENTS)
    velocity = (values[:, 1:] - values[:, :-1]) * (present[:, 1:] & present[:, :-1])
    np.testing.assert_array_equal(out[0, :, :-1, :, 2:4], velocity)
    assert not out[0, 1, ..., :4].any()  # the absent person: every derived channel 0 (its score is the input's)


def test_the_joint_stream_is_the_input_of_earlier_versions():
    ann = {"keypoint": KP, "keypoint_score": np.ones(KP.shape[:-1], np.float32)}
    out = FormatChannels(motion=True, bone=True, parents=PARENTS)(ann, RNG)["keypoint"]
    np.testing.assert_array_equal(out[..., :2], KP)
    np.testing.assert_array_equal(out[0, ..., 4:], EXPECTED["bone"])


def test_an_unknown_stream_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"data\.stream.*'joint', 'bone', 'joint_motion', 'bone_motion'"):
        load_config(None, ["data.stream=bones"])


def test_every_stream_gives_batches_of_the_coordinates_channel_count(small_pickle):
    shapes = set()
    for stream in EXPECTED:
        cfg = load_config(None, [f"data.path={small_pickle}", f"data.stream={stream}", "data.num_workers=0",
                                 "data.clip_len=4", "data.motion=true"])
        data = SkeletonData(cfg, batch_size=4)
        x, _, _ = next(iter(data.train_dataloader()))
        assert x.shape[-1] == data.in_channels == 4
        shapes.add(tuple(x.shape))
    assert len(shapes) == 1


@pytest.fixture(scope="module")
def bone_checkpoint(tmp_path_factory):
    """A tiny bone-stream classifier fine-tuned for two steps on the real UTKinect set (3D, 20 joints)."""
    data = shared_pickle("utkinect")
    out = tmp_path_factory.mktemp("bone_ft")
    assert main(["finetune", "--config", "utkinect", "--out", str(out), f"data.path={data}", "data.stream=bone",
                 "data.clip_len=8", "data.num_workers=0", "encoder.dim=16", "encoder.layers=1",
                 "finetune.pretrained=none", "finetune.epochs=1", "finetune.batch_size=16", "finetune.warmup_epochs=0",
                 "finetune.milestones=[]", "finetune.test=false", "trainer.limit_train_batches=2",
                 "trainer.progress=false"]) == 0
    return out / "checkpoints" / "last.ckpt", data


def test_predict_and_onnx_of_a_bone_stream_checkpoint_compute_bones(bone_checkpoint, tmp_path):
    ckpt, data = bone_checkpoint
    model, cfg = load_classifier(ckpt)
    assert cfg.data.stream == "bone"  # the stream travels with the checkpoint
    clip = load_annotations(data).samples("xsub_val")[0]
    joint_cfg = load_config(None, [f"data.layout={cfg.data.layout}", f"encoder.layout={cfg.encoder.layout}",
                                   f"data.clip_len={cfg.data.clip_len}", f"data.test_clips={cfg.data.test_clips}",
                                   f"data.num_persons={cfg.data.num_persons}", f"data.normalize={cfg.data.normalize}"])
    coords = config_pipeline(joint_cfg, True, train=False)(clip, RNG)["keypoint"]  # [K, P, T, V, 3] joints
    parents = model.encoder.layout.parents()
    present = coords.any(-1, keepdims=True)
    bones = (coords - coords[..., parents, :]) * (present & present[..., parents, :])
    with torch.no_grad():
        expected = model.predict_clips(torch.from_numpy(FormatChannels(
            motion=cfg.data.motion, stream="joint", parents=parents)({"keypoint": bones}, RNG)["keypoint"])[None]
        )[0].numpy()
    predicted = load(ckpt).predict(clip["keypoint"], layout=cfg.data.layout)
    assert predicted["scores"] == pytest.approx(expected.tolist(), abs=1e-5)

    # the exported graph takes joint coordinates and computes the bones itself
    path = tmp_path / "bone.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(path), "--repeats", "1"]) == 0
    meta = read_metadata(path)
    assert meta["stream"] == "bone" and json.loads(meta["channels"]) == ["x", "y", "z"]
    assert "bone vectors" in meta["preprocessing"] and json.loads(meta["bone_parents"]) == parents.tolist()
    logits = onnxruntime.InferenceSession(str(path)).run(["logits"], {"skeleton": coords})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    assert (probs / probs.sum(1, keepdims=True)).mean(0) == pytest.approx(expected.tolist(), abs=1e-5)
