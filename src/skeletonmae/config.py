"""Experiment configuration: typed sections, YAML files, command-line overrides.

A config is a :class:`Config` of five sections (``data``, ``model``, ``pretrain``, ``finetune``,
``trainer``). YAML files give any subset of keys; ``key.sub=value`` overrides (values parsed as YAML)
come last. An unknown key or a value of the wrong type is a :class:`ConfigError` that names the key
and suggests the nearest known one. Defaults are the paper's values (§4.2) where the paper gives one.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError


@dataclass
class DataConfig:
    path: str = ""  # annotation pickle; 'demo' builds the embedded demo set
    layout: str = "coco17"  # the layout the file was recorded in
    train_split: str = "train"
    test_split: str = "test"
    clip_len: int = 64  # T (paper: 64)
    num_persons: int = 2  # P (paper: 2)
    test_clips: int = 10  # K clips averaged at test time
    use_score: bool = False  # paper: S in R^{N x T x 2}, so (x, y) only
    motion: bool = False  # extension: append each joint's frame-to-frame velocity (C more channels)
    bone: bool = False  # extension: append each joint's bone vector, minus its parent joint (C more channels)
    pixel_noise: float = 1.0  # std in pixels, training only (paper §4.1)
    # 2D: 'fix' (by img_shape; paper, PYSKL), 'auto' (by the joints' box) or 'body' (mid-hip centre, torso
    # length -> 0.35: a body keeps its size when it travels). 3D: 'body' (mid-hip centre, torso -> 0.7);
    # 'fix' and 'auto' both mean the 3D default (centre joint, unit RMS radius). See data/transforms.py.
    normalize: str = "fix"
    score_threshold: float = 0.01
    rotate_deg: float = 0.0  # training augmentation: rotation (3D: about the vertical axis; 2D: in-plane)
    scale: float = 0.0  # training augmentation: each axis scaled by U(1 - scale, 1 + scale)
    flip: float = 0.0  # training augmentation: share of clips mirrored left-right (x -> -x, left <-> right joints)
    test_flip: bool = False  # test on every clip and its mirror image, softmax averaged (2K clips)
    label_fraction: float = 1.0  # stratified share of training labels (few-label protocol)
    labels_per_class: int = 0  # > 0: exactly this many labelled clips per class instead
    label_seed: int = 0
    num_workers: int = 2


@dataclass
class ModelConfig:
    layout: str = "coco17"  # the layout the model works in (data are mapped into it)
    dim: int = 64  # D (paper: 64)
    encoder_layers: int = 3  # L_D (paper: 3)
    backbone: str = "gin"  # gin | gcn | gat (Tab. 4c)
    decoder_backbone: str = ""  # '' = same as backbone
    norm: str = "batchnorm"
    act: str = "prelu"  # paper §4.2
    gat_heads: int = 4
    joint_embedding: bool = True  # extension: learnable per-joint vector added to X̄ (False = paper)
    remask: bool = False  # GraphMAE's re-masking before the decoder (see models/skeletonmae.py)
    mask: str = "regions"  # regions (body-region masking, §3.1.2) | joints (random joints, Tab. 5b)
    mask_regions: list[int] | None = None  # fixed region ids V_0..V_5; None = random per clip
    mask_num_regions: list[int] = field(default_factory=lambda: [1, 2])  # k range when random
    mask_ratio: float = 0.5  # share of joints for mask='joints'
    mask_per_frame: bool = False  # draw the mask per frame instead of per clip
    target: str = "coords"  # what is reconstructed (coords | window | embedding): see models/skeletonmae.py
    target_window: int = 2  # +-frames for target='window'
    beta: float = 2.0  # RCE exponent (Eq. 2)
    rce_form: str = "graphmae"  # 'graphmae' mean (1-cos)^beta | 'eq2' as printed
    ema_momentum: float = 0.996  # for target='embedding'
    strl_layers: int = 3  # M (paper: 3); 0 = no STRL layer, an ablation
    temporal_kernel: int = 5
    temporal_dilations: list[int] = field(default_factory=lambda: [1, 2])
    temporal_strides: list[int] = field(default_factory=lambda: [1, 2, 2])
    person_fusion: str = "mean"  # how the persons of a clip interact in SM
    head_hidden: int = 256  # hidden width of the MLP classifier; 0 = a linear classifier
    pool: str = "mean"  # clip pooling before the head: mean (paper) | joint_stats (per-joint mean and std)
    dropout: float = 0.0
    strl_rezero: bool = False  # extension: each STRL layer as H + α · STRL(H), α = 0 at the start (ReZero)
    drop_path: float = 0.0  # with strl_rezero: share of training clips that skip a layer's branch (stochastic depth)


@dataclass
class PretrainConfig:
    epochs: int = 50  # paper: 50
    lr: float = 1.5e-4  # paper: Adam 1.5e-4
    weight_decay: float = 0.0
    batch_size: int = 1024  # paper: 1024
    splits: list[str] | None = None  # unlabelled splits to pre-train on; None = data.train_split
    method: str = "skeletonmae"  # skeletonmae | graphcl | joao (Tab. 4b baselines, models/contrastive.py)
    temperature: float = 0.2  # graphcl / joao: NT-Xent temperature (GraphCL: 0.2)
    aug_ratio: float = 0.2  # graphcl / joao: share of joints / edges an augmentation touches (GraphCL: 0.2)
    frames_per_clip: int = 4  # graphcl / joao: person-frames sampled per clip and step
    joao_gamma: float = 0.1  # joao: weight of the ||p - uniform||^2 term (JOAO: 0.1)


@dataclass
class FinetuneConfig:
    epochs: int = 110  # paper: 110
    lr: float = 0.1  # paper: 0.1 at batch 128; scaled linearly with the batch size
    batch_size: int = 128  # paper: 128
    base_batch_size: int = 128  # the batch size lr refers to
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: int = 5  # paper: 5
    milestones: list[int] = field(default_factory=lambda: [90, 100])  # paper: /10 at 90 and 100
    label_smoothing: float = 0.1  # paper: 0.1
    pretrained: str = ""  # a pre-training checkpoint; '' or 'none' = from scratch
    pretrained_layers: str = "first"  # load G_E into the 'first' STRL layer only (measured better) or 'all' (paper)
    freeze_encoder: bool = False  # linear-probe style: keep the pre-trained G_E fixed


@dataclass
class TrainerConfig:
    out_dir: str = "runs/default"
    seed: int = 0
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    log_every_n_steps: int = 10
    limit_train_batches: float = 1.0
    progress: bool = True
    resume: bool = False  # continue from out_dir/checkpoints/last.ckpt (else a run there is an error)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """A config from a (possibly partial) nested dict, e.g. one stored in a checkpoint."""
        cfg = cls()
        _merge(cfg, values, "")
        validate(cfg)
        return cfg


def _check_type(value, annotation, key: str):
    """Coerce ``value`` to the annotated type where that is lossless; otherwise raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
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
            return float(value)
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
        full = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{full}'.{hint} Known keys: {', '.join(fields)}.")
        current = getattr(section, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, full)
        else:
            setattr(section, key, _check_type(value, hints[key], full))


def parse_overrides(overrides: list[str]) -> dict:
    """``['model.dim=32', 'data.path=x.pkl']`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value (e.g. model.dim=32)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML ({e})") from e
        node = out
        *parents, last = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def load_config(paths: list[str | Path] | str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then each YAML file in order (later wins; ``_base_`` includes others), then overrides."""
    cfg = Config()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for path in paths or []:
        for values in _read_yaml_with_bases(Path(path)):
            _merge(cfg, values, "")
    if overrides:
        _merge(cfg, parse_overrides(overrides), "")
    validate(cfg)
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``section.key=value`` overrides applied and validated."""
    out = Config.from_dict(cfg.to_dict())
    _merge(out, parse_overrides(overrides), "")
    validate(out)
    return out


def packaged_configs() -> dict[str, Path]:
    """The experiment configs shipped with the package, by name (``skeletonmae configs`` lists them)."""
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


def _read_yaml_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> list[dict]:
    path = resolve_config(path)
    if path.resolve() in seen:
        raise ConfigError(f"config {path}: '_base_' includes form a cycle")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    bases = values.pop("_base_", [])
    out = []
    for base in [bases] if isinstance(bases, str) else bases:
        out += _read_yaml_with_bases(path.parent / base, (*seen, path.resolve()))
    return out + [values]


def validate(cfg: Config) -> None:
    """Cross-field checks that a single key's type cannot express."""
    from .data.transforms import NORMALIZE_MODES
    from .skeleton import get_layout

    get_layout(cfg.data.layout)
    get_layout(cfg.model.layout)
    choices = {
        "model.backbone": (cfg.model.backbone, ("gin", "gcn", "gat")),
        "model.decoder_backbone": (cfg.model.decoder_backbone, ("", "gin", "gcn", "gat")),
        "model.mask": (cfg.model.mask, ("regions", "joints")),
        "model.target": (cfg.model.target, ("coords", "window", "embedding")),
        "model.rce_form": (cfg.model.rce_form, ("graphmae", "eq2")),
        "model.person_fusion": (cfg.model.person_fusion, ("mean", "none")),
        "model.pool": (cfg.model.pool, ("mean", "joint_stats")),
        "finetune.pretrained_layers": (cfg.finetune.pretrained_layers, ("all", "first")),
        "pretrain.method": (cfg.pretrain.method, ("skeletonmae", "graphcl", "joao")),
        "data.normalize": (cfg.data.normalize, NORMALIZE_MODES),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"config key '{key}' is {value!r}; choose one of {', '.join(map(repr, allowed))}")
    positive = {
        "data.clip_len": cfg.data.clip_len,
        "data.num_persons": cfg.data.num_persons,
        "data.test_clips": cfg.data.test_clips,
        "pretrain.batch_size": cfg.pretrain.batch_size,
        "pretrain.frames_per_clip": cfg.pretrain.frames_per_clip,
        "finetune.batch_size": cfg.finetune.batch_size,
        "model.dim": cfg.model.dim,
        "model.encoder_layers": cfg.model.encoder_layers,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key '{key}' must be >= 1, got {value}")
    non_negative = {  # M = 0 (no STRL layer) is an ablation; head_hidden = 0 a linear head
        "model.strl_layers": cfg.model.strl_layers,
        "model.head_hidden": cfg.model.head_hidden,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {value}")
    if not 0 < cfg.data.label_fraction <= 1:
        raise ConfigError(f"config key 'data.label_fraction' must be in (0, 1], got {cfg.data.label_fraction}")
    if cfg.model.mask_regions is not None:
        regions = cfg.model.mask_regions
        if not regions or len(regions) >= 6 or any(not 0 <= r < 6 for r in regions):
            raise ConfigError(
                f"config key 'model.mask_regions' must list 1-5 distinct region ids in 0..5 (never all six, "
                f"§3.1.2), got {regions}"
            )
    lo, hi = cfg.model.mask_num_regions
    if not 1 <= lo <= hi <= 5:
        raise ConfigError(
            f"config key 'model.mask_num_regions' must be [k_min, k_max] with 1 <= k <= 5, got {[lo, hi]}"
        )
    if not 0 <= cfg.data.flip <= 1:
        raise ConfigError(f"config key 'data.flip' is the share of training clips mirrored, in [0, 1]; "
                          f"got {cfg.data.flip}")
    if not 0 <= cfg.model.drop_path < 1:
        raise ConfigError(f"config key 'model.drop_path' must be in [0, 1), got {cfg.model.drop_path}")
    if cfg.model.drop_path > 0 and not cfg.model.strl_rezero:
        raise ConfigError("config key 'model.drop_path' drops the branch of a residual STRL layer; "
                          "set model.strl_rezero=true with it (or model.drop_path=0)")
    if cfg.model.beta < 1:
        raise ConfigError(f"config key 'model.beta' must be >= 1 (Eq. 2), got {cfg.model.beta}")
    if cfg.pretrain.temperature <= 0:
        raise ConfigError(f"config key 'pretrain.temperature' must be > 0, got {cfg.pretrain.temperature}")
    if not 0 <= cfg.pretrain.aug_ratio < 1:
        raise ConfigError(f"config key 'pretrain.aug_ratio' must be in [0, 1), got {cfg.pretrain.aug_ratio}")
    if cfg.pretrain.joao_gamma < 0:
        raise ConfigError(f"config key 'pretrain.joao_gamma' must be >= 0, got {cfg.pretrain.joao_gamma}")


def save_config(cfg: Config, path: str | Path) -> None:
    from .fileio import atomic_open

    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
