"""Every packaged config parses, builds its models and takes one pre-training and one fine-tuning step on a
small generated pickle of the config's layout and kind (the large datasets are not available here); the configs of
the real sets here start fine-tuning from the packaged encoder of their modality."""

import json

import pytest
import torch
from conftest import make_sample

from skeletonmae.config import load_config, packaged_configs
from skeletonmae.data.annotations import save_annotations
from skeletonmae.data.dataset import SkeletonData
from skeletonmae.models.build import build_classifier
from skeletonmae.models.skeletonmae import SkeletonMAE
from skeletonmae.skeleton import get_layout

THREE_D = {"nw_ucla", "utkinect", "florence3d", "generic_3d"}


@pytest.mark.parametrize("name", sorted(packaged_configs()))
def test_config_builds_and_steps(name, tmp_path):
    cfg = load_config(name)
    layout = get_layout(cfg.data.layout)
    c = 3 if name in THREE_D else 2
    anns = [make_sample(f"s{i}", label=i % 3, m=1 + i % 2, t=20 + i, v=layout.num_joints, c=c, seed=i)
            for i in range(4)]
    split = {cfg.data.train_split: ["s0", "s1", "s2"], cfg.data.test_split: ["s3"]}
    path = save_annotations(tmp_path / "d.pkl", anns, split)
    cfg = load_config(name, [f"data.path={path}", "data.num_workers=0", "data.test_clips=2"])
    dm = SkeletonData(cfg, batch_size=2)
    x, y, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 1, cfg.data.num_persons, cfg.data.clip_len, get_layout(cfg.encoder.layout).num_joints,
                       dm.in_channels)
    mae = SkeletonMAE(cfg.encoder, cfg.mae, dm.in_channels)
    loss = mae(x[:, 0])["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    clf = build_classifier(cfg, dm.in_channels, dm.num_classes)
    clf.load_pretrained(mae.encoder_state())
    loss = torch.nn.functional.cross_entropy(clf(x[:, 0]), y)
    loss.backward()
    assert torch.isfinite(loss)
    x, _, _ = next(iter(dm.test_dataloader()))
    assert x.shape[1] == 2


@pytest.mark.parametrize("name, encoder", [("penn_action", "coco17_2d"), ("jhmdb14", "coco17_2d"),
                                           ("nw_ucla", "kinect20_3d"), ("utkinect", "kinect20_3d"),
                                           ("florence3d", "kinect20_3d")])
def test_finetune_with_a_packaged_config_starts_from_the_packaged_encoder(name, encoder, tmp_path, capsys):
    """`skeletonmae finetune --config NAME`, no flag: the installed encoder of the set's modality is loaded."""
    from skeletonmae.cli import main

    out = tmp_path / "run"
    assert main(["finetune", "--config", name, "--out", str(out), "finetune.epochs=1", "finetune.warmup_epochs=0",
                 "finetune.test=false", "trainer.limit_train_batches=1", "trainer.progress=false",
                 "data.num_workers=0"]) == 0
    assert json.loads((out / "run.json").read_text())["pretrained"] == f"packaged {encoder}"
    assert f"packaged encoder '{encoder}'" in capsys.readouterr().err
