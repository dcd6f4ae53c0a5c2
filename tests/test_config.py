import pytest

from skeletonmae.config import Config, load_config, packaged_configs, parse_overrides, save_config
from skeletonmae.errors import ConfigError


def test_defaults_are_the_papers():
    c = Config()
    assert (c.data.clip_len, c.model.dim, c.model.encoder_layers, c.model.strl_layers) == (64, 64, 3, 3)
    assert (c.pretrain.lr, c.pretrain.batch_size, c.pretrain.epochs) == (1.5e-4, 1024, 50)
    f = c.finetune
    assert (f.lr, f.batch_size, f.momentum, f.warmup_epochs, f.milestones, f.epochs, f.label_smoothing) == (
        0.1, 128, 0.9, 5, [90, 100], 110, 0.1)
    assert c.model.beta == 2 and c.model.backbone == "gin" and c.model.act == "prelu"


def test_overrides_parse_yaml_values():
    assert parse_overrides(["model.dim=32", "model.mask_regions=[3, 5]", "data.path=a=b.pkl"]) == {
        "model": {"dim": 32, "mask_regions": [3, 5]}, "data": {"path": "a=b.pkl"}}
    c = load_config(None, ["model.dim=32", "pretrain.lr=1e-3", "trainer.devices=2"])
    assert c.model.dim == 32 and c.pretrain.lr == 1e-3 and c.trainer.devices == 2


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match="'model.encoder_layer'. Did you mean 'model.encoder_layers'"):
        load_config(None, ["model.encoder_layer=2"])
    with pytest.raises(ConfigError, match="unknown config key 'modle'. Did you mean 'model'"):
        load_config(None, ["modle.dim=2"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.dim=abc", "expects int"),
        ("model.backbone=gcnn", "choose one of 'gin', 'gcn', 'gat'"),
        ("model.mask_regions=[0, 1, 2, 3, 4, 5]", "never all six"),
        ("data.label_fraction=0", r"must be in \(0, 1\]"),
        ("data.clip_len=0", ">= 1"),
        ("model.beta=0.5", ">= 1"),
        ("model.head_hidden=-1", "model.head_hidden. must be >= 0"),
        ("model.drop_path=0.2", "set model.strl_rezero=true"),
        ("model.drop_path=1", r"must be in \[0, 1\)"),
        ("data.flip=1.5", r"'data.flip' is the share of training clips mirrored, in \[0, 1\]"),
        ("trainer.deterministic=maybe", "true/false"),
        ("model.dim", "must look like section.key=value"),
        ("model.layout=coco18", "unknown skeleton layout"),
    ],
)
def test_bad_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_files_bases_and_roundtrip(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  dim: 32\ndata:\n  clip_len: 16\n")
    (tmp_path / "exp.yaml").write_text("_base_: base.yaml\nmodel:\n  encoder_layers: 2\n")
    c = load_config(tmp_path / "exp.yaml", ["data.clip_len=8"])
    assert (c.model.dim, c.model.encoder_layers, c.data.clip_len) == (32, 2, 8)
    save_config(c, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == c
    assert Config.from_dict(c.to_dict()) == c


def test_packaged_configs_all_parse():
    configs = packaged_configs()
    assert {"demo", "penn_action"} <= set(configs)
    for name in configs:
        load_config(name)


def test_unknown_config_name():
    with pytest.raises(ConfigError, match="Did you mean penn_action"):
        load_config("penn_actoin")
