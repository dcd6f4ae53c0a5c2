"""Experiment configuration: typed sections that follow the model's shape, YAML files, command-line overrides.

A :class:`Config` has the sections ``data``, ``encoder`` (the joint encoder G_E shared by every model),
``mae`` (SkeletonMAE pre-training, §3.1), ``contrast`` (the GraphCL / JOAO baselines, Tab. 4b), ``classifier``
(the SSL model, §3.2), ``pretrain`` / ``finetune`` (the optimisation recipes) and ``trainer`` (devices, logs).
Each model takes its section objects (``SkeletonMAE(EncoderConfig, MAEConfig, ...)``), never loose keys.

Every key is declared once, with its default (the paper's, §4.2, where the paper gives one), a one-line
description and its allowed values: a ``Literal`` type lists the choices, a range bounds a number. YAML files
give any subset of keys; ``section.key=value`` overrides (values parsed as YAML) come last. A relative file path
in a YAML file is looked up beside that file first, then in the working directory. An unknown key, a
value of the wrong type or out of range is a :class:`ConfigError` that names the key and what is allowed.
Keys of the flat ``model`` section of earlier versions (``encoder.dim``, ...) are read under their new names,
so old configs, commands and checkpoints keep working.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .errors import ConfigError

Backbone = Literal["gin", "gcn", "gat"]
Normalize = Literal["fix", "auto", "body"]
# the input streams of skeleton ensembles: joints, bone vectors (joint minus parent), the velocity of either
Stream = Literal["joint", "bone", "joint_motion", "bone_motion"]


def _key(default, doc: str, lo: float | None = None, hi: float | None = None, *, above: bool = False,
         below: bool = False):
    """A config key: its default, a one-line description and its range [lo, hi] (``above``: > lo, ``below``: < hi).

    For a list the range bounds every element."""
    meta = {"doc": doc, "range": (lo, hi, above, below)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    path: str = _key("", "annotation pickle (PYSKL format); 'demo' data: `skeletonmae data demo FILE`")
    layout: str | dict = _key("coco17", "the joint layout the file was recorded in: a built-in name or a layout "
                              "YAML file (data are mapped to encoder.layout)")
    train_split: str = _key("train", "split to train on")
    test_split: str = _key("test", "split to test on")
    clip_len: int = _key(64, "T, frames per clip (paper: 64)", 1, 1024)
    num_persons: int = _key(2, "P, persons per clip (paper: 2)", 1, 8)
    test_clips: int = _key(10, "K clips per sample at test time, softmax averaged", 1, 100)
    use_score: bool = _key(False, "append the joint score as an input channel (paper: (x, y) only)")
    stream: Stream = _key("joint", "input stream: the coordinates replaced by bone vectors and/or their velocity "
                          "(ensembles; the channel count stays)")
    motion: bool = _key(False, "append each joint's frame-to-frame velocity (extension)")
    bone: bool = _key(False, "append each joint's bone vector to its parent (extension)")
    pixel_noise: float = _key(1.0, "std of training pixel noise on 2D joints (paper §4.1)", 0, 100)
    # 2D: 'fix' (by img_shape; paper, PYSKL), 'auto' (by the joints' box) or 'body' (mid-hip centre, torso
    # length -> 0.35: a body keeps its size when it travels). 3D: 'body' (mid-hip centre, torso -> 0.7);
    # 'fix' and 'auto' both mean the 3D default (centre joint, unit RMS radius). See data/transforms.py.
    normalize: Normalize = _key("fix", "2D: 'fix' by frame size, 'auto' by the box, 'body' by torso length; "
                                "3D: 'body' by torso length, else unit RMS radius")
    score_threshold: float = _key(0.01, "2D joints with a score at or below this are absent", 0, 1, below=True)
    rotate_deg: float = _key(0.0, "training rotation up to this many degrees (3D: about the vertical)", 0, 180)
    scale: float = _key(0.0, "training scaling of each axis by U(1 - s, 1 + s)", 0, 1, below=True)
    flip: float = _key(0.0, "share of training clips mirrored left-right (extension)", 0, 1)
    test_flip: bool = _key(False, "also test on every clip's mirror image")
    label_fraction: float = _key(1.0, "stratified share of training labels used (few-label protocol)", 0, 1,
                                 above=True)
    labels_per_class: int = _key(0, "> 0: exactly this many labelled clips per class instead", 0, 10**7)
    label_seed: int = _key(0, "seed of the labelled subset", 0, 2**32 - 1)
    val_fraction: float = _key(0.0, "share of the training split held out for validation (stratified; 0: none)",
                               0, 0.5)
    val_group: str = _key("", "regex whose first group is a clip's subject in frame_dir (e.g. '_s(\\d+)'): "
                          "validation holds out whole subjects")
    val_seed: int = _key(0, "seed of the validation split (the same for every run)", 0, 2**32 - 1)
    num_workers: int = _key(2, "data-loader worker processes", 0, 64)

    def coordinates(self, in_channels: int) -> int:
        """Coordinates per joint (2: 2D, 3: 3D) of a model input of ``in_channels`` channels made with these
        settings (the stream's coordinates, then velocity with ``motion``, bone vectors with ``bone``, the score
        last)."""
        return (in_channels - int(self.use_score)) // (1 + int(self.motion) + int(self.bone))


@dataclass
class EncoderConfig:
    """The joint encoder shared by every model: S -> X (embedding) -> H = G_E(A, X). A pre-trained encoder fits
    a model exactly when the two EncoderConfigs are equal (and the input channels agree)."""

    layout: str | dict = _key("coco17", "the joint layout the encoder works in (adjacency, body regions): a "
                              "built-in name or a layout YAML file")
    dim: int = _key(64, "D, joint feature width (paper: 64)", 1, 1024)
    layers: int = _key(3, "L_D, graph layers of G_E (paper: 3, Tab. 4a)", 1, 16)
    backbone: Backbone = _key("gin", "graph layer of G_E (paper: GIN; Tab. 4c)")
    norm: Literal["batchnorm", "layernorm", "none"] = _key("batchnorm", "normalisation in each graph layer")
    act: Literal["prelu", "relu", "elu", "gelu", "none"] = _key("prelu", "activation (paper §4.2: PReLU)")
    gat_heads: int = _key(4, "attention heads of a GAT backbone", 1, 16)
    joint_embedding: bool = _key(True, "learnable per-joint vector added after masking (extension; paper: false)")


@dataclass
class MAEConfig:
    """SkeletonMAE pre-training (§3.1): masking, decoder G_D, reconstruction target, RCE (Eq. 1-2)."""

    decoder_backbone: Literal["", "gin", "gcn", "gat"] = _key("", "graph layer of G_D ('' = encoder.backbone)")
    remask: bool = _key(False, "GraphMAE's re-masking before the decoder")
    mask: Literal["regions", "joints"] = _key("regions", "body-region masking (§3.1.2) or random joints (Tab. 5b)")
    mask_regions: list[int] | None = _key(None, "fixed region ids 0..5 to mask; null draws regions at random", 0, 5)
    mask_num_regions: list[int] = _key([1, 2], "[k_min, k_max] random regions per mask", 1, 5)
    mask_ratio: float = _key(0.5, "share of joints masked with mask=joints", 0, 1, above=True, below=True)
    mask_per_frame: bool = _key(False, "draw a new mask per frame instead of per clip")
    target: Literal["coords", "window", "embedding"] = _key("coords", "what is reconstructed (models/skeletonmae.py)")
    target_window: int = _key(2, "+-frames of the 'window' target", 0, 16)
    beta: float = _key(2.0, "RCE exponent beta (Eq. 2)", 1, 10)
    rce_form: Literal["graphmae", "eq2"] = _key("graphmae", "RCE normalisation: GraphMAE's mean or Eq. 2 as printed")
    ema_momentum: float = _key(0.996, "EMA momentum of the 'embedding' target", 0, 1, below=True)


@dataclass
class ContrastConfig:
    """GraphCL / JOAO pre-training of the same encoder (the baselines of Tab. 4b)."""

    temperature: float = _key(0.2, "NT-Xent temperature (GraphCL: 0.2)", 0, 100, above=True)
    aug_ratio: float = _key(0.2, "share of joints / edges an augmentation touches (GraphCL: 0.2)", 0, 1, below=True)
    frames_per_clip: int = _key(4, "person-frames sampled per clip and step", 1, 64)
    joao_gamma: float = _key(0.1, "JOAO's weight of ||p - uniform||^2", 0, 100)


@dataclass
class ClassifierConfig:
    """The SSL classifier (§3.2): M STRL layers, pooling, MLP head."""

    strl_layers: int = _key(3, "M, STRL layers (paper: 3, Tab. 5a); 0 pools the embedding", 0, 16)
    temporal_kernel: int = _key(5, "kernel of the multi-scale temporal convolution", 1, 31)
    temporal_dilations: list[int] = _key([1, 2], "dilations of its branches", 1, 16)
    temporal_strides: list[int] = _key([1, 2, 2], "temporal stride of each STRL layer", 1, 8)
    person_fusion: Literal["mean", "none"] = _key("mean", "how the persons of a clip interact in SM")
    head_hidden: int = _key(256, "hidden width of the MLP head; 0 = a linear head", 0, 8192)
    pool: Literal["mean", "joint_stats"] = _key("mean", "pooling before the head: mean (paper) or per-joint stats")
    dropout: float = _key(0.0, "dropout in the temporal convolutions and the head", 0, 1, below=True)
    rezero: bool = _key(False, "residual STRL layers H + alpha * STRL(H), alpha = 0 at the start (extension)")
    drop_path: float = _key(0.0, "with rezero: share of training clips that skip a layer's branch", 0, 1, below=True)


@dataclass
class PretrainConfig:
    method: Literal["skeletonmae", "graphcl", "joao"] = _key("skeletonmae", "what pre-trains the encoder")
    epochs: int = _key(50, "epochs (paper: 50)", 1, 10**6)
    lr: float = _key(1.5e-4, "Adam learning rate (paper: 1.5e-4)", 0, 10, above=True)
    weight_decay: float = _key(0.0, "Adam weight decay", 0, 1)
    batch_size: int = _key(1024, "clips per step and process (paper: 1024)", 1, 65536)
    splits: list[str] | None = _key(None, "unlabelled splits to pre-train on; null = data.train_split")


@dataclass
class FinetuneConfig:
    epochs: int = _key(110, "epochs (paper: 110)", 1, 10**6)
    lr: float = _key(0.1, "SGD learning rate at base_batch_size, scaled linearly with batch_size", 0, 10, above=True)
    batch_size: int = _key(128, "clips per step and process (paper: 128)", 1, 65536)
    base_batch_size: int = _key(128, "the batch size lr refers to", 1, 65536)
    momentum: float = _key(0.9, "SGD momentum", 0, 1, below=True)
    nesterov: bool = _key(True, "Nesterov momentum")
    weight_decay: float = _key(5e-4, "SGD weight decay", 0, 1)
    warmup_epochs: int = _key(5, "linear warm-up epochs (paper: 5)", 0, 10**6)
    milestones: list[int] = _key([90, 100], "epochs where lr is divided by 10 (paper: 90, 100)", 0, 10**6)
    label_smoothing: float = _key(0.1, "label smoothing (paper: 0.1)", 0, 1, below=True)
    pretrained: str = _key("auto", "'auto': the packaged encoder that fits; a pre-training checkpoint or encoder "
                           "file; 'none': from scratch")
    pretrained_layers: Literal["first", "all"] = _key("first", "STRL layers that get the pre-trained G_E")
    test: bool = _key(True, "test on data.test_split after training (false: validation only, to choose a recipe)")
    freeze_encoder: bool = _key(False, "keep the pre-trained G_E fixed (linear-probe style)")
    encoder_lr_scale: float = _key(1.0, "learning-rate factor of the parameters a pre-trained encoder loads (the "
                                   "joint encoder; with pretrained_layers=all also the deeper G_E); 1: the paper",
                                   0, 10, above=True)


@dataclass
class TrainerConfig:
    out_dir: str = _key("runs/default", "run directory (config, checkpoints, logs, metrics)")
    seed: int = _key(0, "seed of initialisation, shuffling and augmentation", 0, 2**32 - 1)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = _key("auto", "Lightning accelerator")
    devices: str | int = _key("auto", "devices per node: 'auto' or a count")
    num_nodes: int = _key(1, "nodes", 1, 4096)
    strategy: str = _key("auto", "Lightning strategy (auto, ddp, ...)")
    precision: Literal["32-true", "32", "16-mixed", "bf16-mixed", "64-true", "64"] = _key("32-true",
                                                                                       "Lightning precision")
    deterministic: bool = _key(False, "deterministic algorithms only")
    log_every_n_steps: int = _key(10, "log every n optimiser steps", 1, 10**6)
    limit_train_batches: float = _key(1.0, "share (<= 1) or number (> 1) of training batches per epoch", 0, 10**9,
                                      above=True)
    progress: bool = _key(True, "show a progress bar")
    resume: bool = _key(False, "continue from out_dir/checkpoints/last.ckpt (else a run there is an error)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    mae: MAEConfig = field(default_factory=MAEConfig)
    contrast: ContrastConfig = field(default_factory=ContrastConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """A config from a (possibly partial) nested dict, e.g. one stored in a checkpoint (old keys migrated)."""
        cfg = cls()
        _merge(cfg, migrate(values), "")
        validate(cfg)
        return cfg


# The flat `model` section and the contrastive keys of `pretrain` before the sections followed the model.
RENAMED: dict[str, str] = {
    **{f"model.{k}": f"encoder.{k}" for k in ("layout", "dim", "backbone", "norm", "act", "gat_heads",
                                                "joint_embedding")},
    "model.encoder_layers": "encoder.layers",
    **{f"model.{k}": f"mae.{k}" for k in ("decoder_backbone", "remask", "mask", "mask_regions", "mask_num_regions",
                                            "mask_ratio", "mask_per_frame", "target", "target_window", "beta",
                                            "rce_form", "ema_momentum")},
    **{f"model.{k}": f"classifier.{k}" for k in ("strl_layers", "temporal_kernel", "temporal_dilations",
                                                   "temporal_strides", "person_fusion", "head_hidden", "pool",
                                                   "dropout", "drop_path")},
    "model.strl_rezero": "classifier.rezero",
    **{f"pretrain.{k}": f"contrast.{k}" for k in ("temperature", "aug_ratio", "frames_per_clip", "joao_gamma")},
}


def migrate(values: dict) -> dict:
    """``values`` with keys of earlier versions (:data:`RENAMED`) moved to their sections."""
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(values).__name__}")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for old, new in RENAMED.items():
        section, key = old.split(".")
        if isinstance(out.get(section), dict) and key in out[section]:
            new_section, new_key = new.split(".")
            out.setdefault(new_section, {})
            if isinstance(out[new_section], dict):
                out[new_section].setdefault(new_key, out[section].pop(key))
    if isinstance(out.get("model"), dict):
        left = out.pop("model")
        if left:
            raise ConfigError(f"unknown config key 'model.{next(iter(left))}': the model section is now encoder.*, "
                              "mae.* and classifier.* (`skeletonmae config show` lists every key)")
    return out


def _check_type(value, annotation, key: str):
    """Coerce ``value`` to the annotated type where that is lossless; otherwise raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if value not in args or isinstance(value, bool):
            raise ConfigError(f"config key '{key}' is {value!r}; choose one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {value!r}")
        return [_check_type(v, args[0], key) for v in value]
    if annotation is float and not isinstance(value, bool) and isinstance(value, (int, str)):
        try:  # YAML reads 1e-3 (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"config key '{key}' expects true/false, got {value!r}")
    if annotation in (int, float, str) and (not isinstance(value, annotation) or isinstance(value, bool)):
        raise ConfigError(f"config key '{key}' expects {annotation.__name__}, got {value!r}")
    return value


def _merge(section, values: dict, prefix: str):
    if not isinstance(values, dict):
        raise ConfigError(f"config section '{prefix}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    hints = typing.get_type_hints(type(section))
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" Did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{full}'.{hint} Known keys: {', '.join(fields)}.")
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, full)
        else:
            setattr(section, key, _check_type(value, hints[key], full))


def parse_overrides(overrides: list[str]) -> dict:
    """``['encoder.dim=32', 'data.path=x.pkl']`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value (e.g. encoder.dim=32)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML ({e})") from e
        node = out
        *parents, last = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{p}' is a key, not a section")
        node[last] = value
    return out


def load_config(paths: list[str | Path] | str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then each YAML file in order (later wins; ``_base_`` includes others), then overrides.

    A relative file path in a config file (``data.path``, ``finetune.pretrained``) is read relative to that file's
    folder when the file exists there, else relative to the working directory; in overrides, relative to the
    working directory."""
    cfg = Config()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for path in paths or []:
        for values in _read_yaml_with_bases(Path(path)):
            _merge(cfg, migrate(values), "")
    if overrides:
        _merge(cfg, migrate(parse_overrides(overrides)), "")
    validate(cfg)
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``section.key=value`` overrides applied and validated."""
    out = Config.from_dict(cfg.to_dict())
    _merge(out, migrate(parse_overrides(overrides)), "")
    validate(out)
    return out


def packaged_configs() -> dict[str, Path]:
    """The experiment configs shipped with the package, by name."""
    from importlib import resources

    root = Path(str(resources.files("skeletonmae") / "configs"))
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}


def resolve_config(name: str | Path) -> Path:
    """A config file path, or the name of a packaged config (``penn_action``, ``demo``, ...)."""
    path = Path(name)
    if path.is_file():
        return path
    known = packaged_configs()
    if str(name) in known:
        return known[str(name)]
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"config '{name}' is neither a file nor a packaged config.{hint} "
                      f"Packaged: {', '.join(known)}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (the second would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key '{key}' is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> list[dict]:
    path = resolve_config(path)
    if path.resolve() in seen:
        raise ConfigError(f"config {path}: '_base_' includes form a cycle")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except ConfigError as e:
        raise ConfigError(f"config file {path}: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror or e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    bases = values.pop("_base_", [])
    out = []
    for base in [bases] if isinstance(bases, str) else bases:
        out += _read_yaml_with_bases(path.parent / base, (*seen, path.resolve()))
    return out + [_paths_beside(values, path.parent)]


# Keys that name files. In a config file, a relative path is looked up beside the file first.
PATH_KEYS = (("data", "path"), ("finetune", "pretrained"))


def _paths_beside(values: dict, folder: Path) -> dict:
    """``values`` of a config file in ``folder``, with each relative file path (:data:`PATH_KEYS`) that exists
    relative to ``folder`` made absolute; other paths stay as given, relative to the working directory (as in
    the packaged configs and in configs of earlier versions)."""
    for section, key in PATH_KEYS:
        given = values.get(section, {}).get(key) if isinstance(values.get(section), dict) else None
        if not isinstance(given, str) or given.lower() in ("", "auto", "none") or Path(given).is_absolute():
            continue
        beside = folder / given
        if beside.is_file() and os.path.abspath(beside) != os.path.abspath(given):
            values[section] = {**values[section], key: os.path.abspath(beside)}
    return values


def keys(cfg: Config | None = None) -> list[tuple[str, object, str]]:
    """Every key as (``section.key``, value, description), in declaration order (for --help and `config show`);
    the values of ``cfg``, or the defaults."""
    cfg = cfg or Config()
    out = []
    for section in dataclasses.fields(cfg):
        values = getattr(cfg, section.name)
        for f in dataclasses.fields(values):
            out.append((f"{section.name}.{f.name}", getattr(values, f.name), f.metadata.get("doc", "")))
    return out


def yaml_value(value) -> str:
    """``value`` as one line of YAML (lists in flow style, strings quoted where YAML needs it)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def commented_yaml(cfg: Config) -> str:
    """``cfg`` as YAML that loads back to the same config, each key followed by its description as a comment
    (and its default, where the value differs from it)."""
    defaults = dict((name, value) for name, value, _ in keys())
    lines, section = [], None
    for name, value, doc in keys(cfg):
        head, key = name.split(".")
        if head != section:
            lines.append(f"{head}:")
            section = head
        note = doc if value == defaults[name] else f"{doc} [default: {yaml_value(defaults[name])}]"
        lines.append(f"  {key}: {yaml_value(value)}  # {note}")
    return "\n".join(lines) + "\n"


def _check_range(cfg: Config) -> None:
    """Every number within its declared range, never NaN or infinite (lists element by element)."""
    for section in dataclasses.fields(cfg):
        values = getattr(cfg, section.name)
        for f in dataclasses.fields(values):
            lo, hi, above, below = f.metadata.get("range", (None, None, False, False))
            value = getattr(values, f.name)
            for v in value if isinstance(value, list) else [value]:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                bad = (not math.isfinite(v) or (lo is not None and (v <= lo if above else v < lo))
                       or (hi is not None and (v >= hi if below else v > hi)))
                if bad:
                    lo_s = "" if lo is None else f"{'(' if above else '['}{lo:g}"
                    hi_s = "" if hi is None else f"{hi:g}{')' if below else ']'}"
                    raise ConfigError(f"config key '{section.name}.{f.name}' must be in {lo_s}, {hi_s}, got {v!r} "
                                      f"({f.metadata['doc']})")


def validate(cfg: Config) -> None:
    """Ranges of every key, and the cross-field checks that a single key's type cannot express.

    A layout file named in ``data.layout`` / ``encoder.layout`` is replaced by its definition, which the config
    (and so every checkpoint) then carries."""
    from .skeleton import layout_setting

    _check_range(cfg)
    for key, section in (("data.layout", cfg.data), ("encoder.layout", cfg.encoder)):
        try:
            section.layout = layout_setting(section.layout)
        except ConfigError as e:
            raise ConfigError(f"config key '{key}': {e}") from e
    m = cfg.mae
    if m.mask_regions is not None and (not m.mask_regions or len(set(m.mask_regions)) != len(m.mask_regions)
                                       or len(m.mask_regions) >= 6):
        raise ConfigError(f"config key 'mae.mask_regions' must list 1-5 distinct region ids in 0..5 (never all "
                          f"six, §3.1.2), got {m.mask_regions}")
    if len(m.mask_num_regions) != 2 or m.mask_num_regions[0] > m.mask_num_regions[1]:
        raise ConfigError(f"config key 'mae.mask_num_regions' must be [k_min, k_max] with 1 <= k_min <= k_max <= "
                          f"5, got {m.mask_num_regions}")
    if cfg.classifier.drop_path > 0 and not cfg.classifier.rezero:
        raise ConfigError("config key 'classifier.drop_path' drops the branch of a residual STRL layer; "
                          "set classifier.rezero=true with it (or classifier.drop_path=0)")
    if cfg.classifier.temporal_kernel % 2 == 0:
        raise ConfigError(f"config key 'classifier.temporal_kernel' must be odd (centred windows), "
                          f"got {cfg.classifier.temporal_kernel}")
    devices = cfg.trainer.devices
    if not (devices == "auto" or (isinstance(devices, int) and 1 <= devices <= 4096)):
        raise ConfigError(f"config key 'trainer.devices' must be 'auto' or a count >= 1, got {devices!r}")


def save_config(cfg: Config, path: str | Path) -> None:
    from .fileio import atomic_open

    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
