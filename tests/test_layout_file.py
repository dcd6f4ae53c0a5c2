"""Layout files: a skeleton of one's own as YAML, accepted wherever a layout name is, carried by checkpoints."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from skeletonmae.cli import main
from skeletonmae.config import Config, EncoderConfig, load_config
from skeletonmae.errors import ConfigError
from skeletonmae.models.build import PretrainedEncoder, build_classifier, load_classifier
from skeletonmae.skeleton import LAYOUTS, get_layout, joint_mapping, layout_yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "mediapipe33.yaml"


def _same(a, b) -> None:
    assert (a.name, a.joints, a.bones, a.center, a.regions) == (b.name, b.joints, b.bones, b.center, b.regions)
    np.testing.assert_array_equal(a.mirror(), b.mirror())


@pytest.mark.parametrize("name", sorted(set(layout.name for layout in LAYOUTS.values())))
def test_builtin_layout_written_as_file_reads_back_the_same(name, tmp_path):
    path = tmp_path / "layout.yaml"
    path.write_text(layout_yaml(name))
    _same(get_layout(str(path)), LAYOUTS[name])


def test_example_file_is_mediapipe_and_maps_to_coco17_by_name():
    layout = get_layout(EXAMPLE)
    assert layout.name == "mediapipe33" and layout.num_joints == 33
    twin = layout.mirror()
    assert layout.joints[twin[layout.joints.index("mouth_left")]] == "mouth_right"  # a twin not named left_/right_
    np.testing.assert_array_equal(twin[twin], np.arange(33))
    # MediaPipe's landmark indices of COCO's 17 joints (nose 0, eyes 2 and 5, ears 7 and 8, shoulders 11 and 12, ...)
    assert joint_mapping(layout, "coco17").tolist() == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def _spec() -> dict:
    return yaml.safe_load(layout_yaml("penn13"))


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["bones"].append(["left_knee", "left_kne"]), "'left_kne', which is not in 'joints'.*left_knee"),
    (lambda s: s["bones"].append(["head", "head"]), "pairs a joint with itself"),
    (lambda s: s["bones"].append(["right_shoulder", "head"]), "lists .* twice"),
    (lambda s: s["joints"].__setitem__(12, "left_ankle"), "'left_ankle' is listed twice"),
    (lambda s: s["regions"]["right_leg"].remove("right_ankle"), "exactly one region; in none: right_ankle"),
    (lambda s: s["regions"]["head"].append("left_hip"), "exactly one region; in two: left_hip"),
    (lambda s: s["regions"].pop("torso"), "six body regions"),
    (lambda s: s["regions"].__setitem__("head", []), "region 'head' is empty"),
    (lambda s: s.__setitem__("center", "pelvis"), "centre joint 'pelvis'"),
    (lambda s: s["twins"].append(["left_hip", "right_knee"]), "two twins"),
    (lambda s: s.pop("bones"), "missing: bones"),
    (lambda s: s.__setitem__("colour", "red"), "unknown: colour"),
])
def test_broken_layout_files_are_refused_with_what_is_wrong(change, message, tmp_path):
    spec = _spec()
    spec["name"] = "mine"
    change(spec)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=message):
        get_layout(str(path))


def test_a_builtin_name_with_another_definition_is_refused(tmp_path):
    spec = _spec()
    spec["bones"].pop()
    path = tmp_path / "penn.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="built-in layout has this name"):
        get_layout(str(path))


def test_twins_left_out_pair_left_with_right_and_name_defaults_to_the_file(tmp_path):
    spec = _spec()
    del spec["twins"], spec["name"]
    path = tmp_path / "my_penn.yaml"
    path.write_text(yaml.safe_dump(spec))
    layout = get_layout(str(path))
    assert layout.name == "my_penn"
    np.testing.assert_array_equal(layout.mirror(), LAYOUTS["penn13"].mirror())


def test_layouts_that_share_no_joint_name_cannot_be_mapped(tmp_path):
    spec = _spec()
    spec["name"] = "renamed"
    rename = {n: f"j{i}" for i, n in enumerate(spec["joints"])}
    spec["joints"] = [rename[n] for n in spec["joints"]]
    spec["bones"] = [[rename[a], rename[b]] for a, b in spec["bones"]]
    spec["center"] = rename[spec["center"]]
    spec["regions"] = {r: [rename[n] for n in names] for r, names in spec["regions"].items()}
    spec["twins"] = [[rename[a], rename[b]] for a, b in spec["twins"]]
    with pytest.raises(ConfigError, match="cannot be mapped to layout coco17.*share none"):
        joint_mapping(spec, "coco17")


def test_config_keeps_the_file_definition_and_a_checkpoint_loads_without_the_file(tmp_path):
    path = tmp_path / "mediapipe33.yaml"
    path.write_text(EXAMPLE.read_text())
    cfg = load_config(None, [f"data.layout={path}", f"encoder.layout={path}", "encoder.dim=8",
                             "classifier.head_hidden=0"])
    assert cfg.data.layout == cfg.encoder.layout == get_layout(EXAMPLE).to_dict()
    model = build_classifier(cfg, 2, 3)
    ckpt = {"hyper_parameters": {"config": cfg.to_dict(), "in_channels": 2, "num_classes": 3, "format": 1},
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}
    torch.save(ckpt, tmp_path / "model.ckpt")
    path.unlink()
    loaded, loaded_cfg = load_classifier(tmp_path / "model.ckpt")
    _same(loaded.encoder.layout, get_layout(EXAMPLE))
    assert Config.from_dict(loaded_cfg.to_dict()).encoder.layout["name"] == "mediapipe33"
    x = torch.randn(1, 1, cfg.data.clip_len, 33, 2)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_an_encoder_of_another_layout_names_the_layout_file_not_its_joints():
    cfg = load_config(None, [f"encoder.layout={EXAMPLE}"])
    fit, _ = PretrainedEncoder("coco", EncoderConfig(), 4, {}, {}, {}).differences(cfg, 4)
    assert fit == ["encoder.layout: encoder 'coco17', config layout file 'mediapipe33'"]


def test_a_file_of_a_builtin_layout_is_kept_by_name(tmp_path):
    path = tmp_path / "coco.yaml"
    assert main(["data", "layout", "coco17", "--out", str(path)]) == 0
    assert load_config(None, [f"encoder.layout={path}"]).encoder.layout == "coco17"  # packaged encoders fit it


def test_config_names_the_key_of_a_bad_layout():
    with pytest.raises(ConfigError, match="config key 'encoder.layout': unknown skeleton layout 'coco71'.*coco17"):
        load_config(None, ["encoder.layout=coco71"])


def test_cli_writes_a_layout_file_and_refuses_to_overwrite_its_input(tmp_path, capsys):
    out = tmp_path / "kinect.yaml"
    assert main(["data", "layout", "kinect20", "--out", str(out)]) == 0
    _same(get_layout(str(out)), LAYOUTS["kinect20"])
    assert main(["data", "layout", str(out), "--out", str(out)]) == 2
    assert "refusing to write" in capsys.readouterr().err
