import dataclasses
import math

import pytest

from skeletonmae.config import (
    RENAMED,
    Config,
    EncoderConfig,
    keys,
    load_config,
    migrate,
    packaged_configs,
    parse_overrides,
    save_config,
)
from skeletonmae.errors import ConfigError


def test_defaults_are_the_papers():
    c = Config()
    assert (c.data.clip_len, c.encoder.dim, c.encoder.layers, c.classifier.strl_layers) == (64, 64, 3, 3)
    assert (c.pretrain.lr, c.pretrain.batch_size, c.pretrain.epochs) == (1.5e-4, 1024, 50)
    f = c.finetune
    assert (f.lr, f.batch_size, f.momentum, f.warmup_epochs, f.milestones, f.epochs, f.label_smoothing) == (
        0.1, 128, 0.9, 5, [90, 100], 110, 0.1)
    assert c.mae.beta == 2 and c.encoder.backbone == "gin" and c.encoder.act == "prelu"


def test_overrides_parse_yaml_values():
    assert parse_overrides(["encoder.dim=32", "mae.mask_regions=[3, 5]", "data.path=a=b.pkl"]) == {
        "encoder": {"dim": 32}, "mae": {"mask_regions": [3, 5]}, "data": {"path": "a=b.pkl"}}
    c = load_config(None, ["encoder.dim=32", "pretrain.lr=1e-3", "trainer.devices=2"])
    assert c.encoder.dim == 32 and c.pretrain.lr == 1e-3 and c.trainer.devices == 2


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match="'encoder.layer'. Did you mean 'encoder.layers'"):
        load_config(None, ["encoder.layer=2"])
    with pytest.raises(ConfigError, match="unknown config key 'encodr'. Did you mean 'encoder'"):
        load_config(None, ["encodr.dim=2"])


def test_keys_of_the_flat_model_section_are_read_under_their_new_names(tmp_path):
    """Configs, commands and checkpoints of earlier versions used one flat `model` section."""
    c = load_config(None, ["model.dim=32", "model.encoder_layers=2", "model.strl_rezero=true", "model.target=window",
                           "pretrain.temperature=0.5"])
    assert (c.encoder.dim, c.encoder.layers, c.classifier.rezero, c.mae.target, c.contrast.temperature) == (
        32, 2, True, "window", 0.5)
    (tmp_path / "old.yaml").write_text("model:\n  layout: kinect20\n  pool: joint_stats\n")
    c = load_config(tmp_path / "old.yaml")
    assert (c.encoder.layout, c.classifier.pool) == ("kinect20", "joint_stats")
    assert migrate({"model": {"dim": 8}, "data": {"clip_len": 4}}) == {"encoder": {"dim": 8}, "data": {"clip_len": 4}}
    for old, new in RENAMED.items():  # every new name exists
        section, key = new.split(".")
        assert key in {f.name for f in dataclasses.fields(getattr(Config(), section))}, old
    with pytest.raises(ConfigError, match="unknown config key 'model.nonsense'"):
        load_config(None, ["model.nonsense=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("encoder.dim=abc", "expects int"),
        ("encoder.backbone=gcnn", "'encoder.backbone' is 'gcnn'; choose one of 'gin', 'gcn', 'gat'"),
        ("mae.mask_regions=[0, 1, 2, 3, 4, 5]", "never all six"),
        ("mae.mask_regions=[7]", r"'mae.mask_regions' must be in \[0, 5\]"),
        ("mae.mask_num_regions=[3, 1]", "k_min <= k_max"),
        ("mae.mask_ratio=1.5", r"'mae.mask_ratio' must be in \(0, 1\)"),
        ("data.label_fraction=0", r"must be in \(0, 1\]"),
        ("data.clip_len=0", r"'data.clip_len' must be in \[1, 1024\]"),
        ("data.clip_len=100000", r"'data.clip_len' must be in \[1, 1024\]"),
        ("data.test_clips=100000", r"'data.test_clips' must be in \[1, 100\]"),
        ("data.num_workers=-1", r"'data.num_workers' must be in \[0, 64\]"),
        ("encoder.dim=1000000", r"'encoder.dim' must be in \[1, 1024\]"),
        ("mae.beta=0.5", r"must be in \[1, 10\]"),
        ("classifier.head_hidden=-1", r"'classifier.head_hidden' must be in \[0, 8192\]"),
        ("classifier.dropout=5", r"'classifier.dropout' must be in \[0, 1\)"),
        ("classifier.drop_path=0.2", "set classifier.rezero=true"),
        ("classifier.drop_path=1", r"must be in \[0, 1\)"),
        ("classifier.temporal_kernel=4", "must be odd"),
        ("classifier.temporal_strides=[1, 0]", r"'classifier.temporal_strides' must be in \[1, 8\]"),
        ("data.flip=1.5", r"'data.flip' must be in \[0, 1\]"),
        ("finetune.lr=-0.1", r"'finetune.lr' must be in \(0, 10\]"),
        ("finetune.lr=.nan", "'finetune.lr' must be in"),
        ("pretrain.lr=.inf", "'pretrain.lr' must be in"),
        ("finetune.milestones=[-1]", "'finetune.milestones' must be in"),
        ("trainer.devices=0", "'trainer.devices' must be 'auto' or a count >= 1"),
        ("trainer.precision=banana", "'trainer.precision' is 'banana'; choose one of"),
        ("trainer.accelerator=quantum", "'trainer.accelerator' is 'quantum'"),
        ("trainer.deterministic=maybe", "true/false"),
        ("encoder.dim", "must look like section.key=value"),
        ("encoder.layout=coco18", "unknown skeleton layout"),
        ("data.clip_len.x=3", "'data.clip_len' expects int"),
    ],
)
def test_bad_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_files_bases_and_roundtrip(tmp_path):
    (tmp_path / "base.yaml").write_text("encoder:\n  dim: 32\ndata:\n  clip_len: 16\n")
    (tmp_path / "exp.yaml").write_text("_base_: base.yaml\nencoder:\n  layers: 2\n")
    c = load_config(tmp_path / "exp.yaml", ["data.clip_len=8"])
    assert (c.encoder.dim, c.encoder.layers, c.data.clip_len) == (32, 2, 8)
    save_config(c, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == c
    assert Config.from_dict(c.to_dict()) == c


def test_yaml_files_that_would_silently_mislead_are_refused(tmp_path):
    (tmp_path / "dup.yaml").write_text("encoder:\n  dim: 32\n  dim: 16\n")
    with pytest.raises(ConfigError, match="line 3: key 'dim' is given twice"):
        load_config(tmp_path / "dup.yaml")
    (tmp_path / "latin1.yaml").write_bytes("data:\n  path: caf\xe9.pkl\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(tmp_path / "latin1.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")


def test_every_key_is_described_and_its_default_is_valid():
    described = keys()
    assert len(described) > 80
    for name, default, doc in described:
        assert doc, f"{name} has no description"
        assert not (isinstance(default, float) and math.isnan(default))
    assert EncoderConfig() == EncoderConfig() and EncoderConfig(dim=8) != EncoderConfig()


def test_packaged_configs_all_parse():
    configs = packaged_configs()
    assert {"demo", "penn_action"} <= set(configs)
    for name in configs:
        load_config(name)


def test_unknown_config_name():
    with pytest.raises(ConfigError, match="Did you mean penn_action"):
        load_config("penn_actoin")


def test_commented_yaml_loads_back_to_the_same_config():
    import yaml

    from skeletonmae.config import commented_yaml

    cfg = load_config(None, ["data.path='dir: with colon/#hash.pkl'", "mae.mask_regions=[0, 3]", "data.val_group=''",
                             "classifier.temporal_dilations=[1, 2, 4]", "trainer.devices=2", "pretrain.lr=1e-3"])
    text = commented_yaml(cfg)
    assert Config.from_dict(yaml.safe_load(text)) == cfg
    assert "  mask_regions: [0, 3]  # fixed region ids 0..5 to mask; null draws regions at random [default: null]" \
        in text and cfg.data.path == "dir: with colon/#hash.pkl"
    assert Config.from_dict(yaml.safe_load(commented_yaml(Config()))) == Config()


def test_data_paths_in_a_config_file_are_read_beside_it_first(small_pickle, tmp_path, monkeypatch):
    """A config kept with its data works from any working directory; a path found only from the working
    directory (packaged configs, configs of earlier versions) still works; overrides are typed from the shell."""
    from skeletonmae.data.dataset import SkeletonData

    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "data").mkdir()
    data = project / "data" / "small.pkl"
    small_pickle.rename(data)
    (project / "configs" / "mine.yaml").write_text("data:\n  path: ../data/small.pkl\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(project / "configs" / "mine.yaml")
    assert cfg.data.path == str(data)
    assert len(SkeletonData(cfg, batch_size=4).train_samples()) == 8  # the real file, read from elsewhere
    # a config that includes another: each path beside the file that names it
    (tmp_path / "top.yaml").write_text("_base_: project/configs/mine.yaml\nencoder:\n  dim: 8\n")
    assert load_config(tmp_path / "top.yaml").data.path == str(data)
    # found only from the working directory: kept as given
    monkeypatch.chdir(project)
    (project / "configs" / "cwd.yaml").write_text("data:\n  path: data/small.pkl\n")
    assert load_config(project / "configs" / "cwd.yaml").data.path == "data/small.pkl"
    # the config in the working directory itself: the same file either way, kept as given
    (project / "here.yaml").write_text("data:\n  path: data/small.pkl\n")
    assert load_config(project / "here.yaml").data.path == "data/small.pkl"
    # overrides are relative to the working directory, as the shell completes them
    assert load_config(project / "configs" / "mine.yaml", ["data.path=data/small.pkl"]).data.path == "data/small.pkl"
    # a pre-trained checkpoint named in a config is found the same way; 'auto' and 'none' are no paths
    (project / "configs" / "enc.ckpt").write_bytes(b"")
    (project / "configs" / "ft.yaml").write_text("finetune:\n  pretrained: enc.ckpt\n")
    assert load_config(project / "configs" / "ft.yaml").finetune.pretrained == str(project / "configs" / "enc.ckpt")
    (project / "configs" / "none").write_bytes(b"")
    (project / "configs" / "scratch.yaml").write_text("finetune:\n  pretrained: none\n")
    assert load_config(project / "configs" / "scratch.yaml").finetune.pretrained == "none"


def test_packaged_configs_keep_their_paths_from_the_working_directory():
    assert load_config("penn_action").data.path == "../shared/data/penn_action/penn_action.pkl"
    assert load_config("demo").data.path == "runs/demo/demo.pkl"
