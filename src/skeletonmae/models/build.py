"""Building and loading every model, from a config or from a checkpoint: the one place that does it.

Training (``tasks/``), inference, export and the figures all build and load models here, so none of them
needs Lightning. A checkpoint is read with ``torch.load(weights_only=True)`` (tensors and plain data only;
it cannot run code) and holds ``hyper_parameters`` = {``config`` (the whole config as a dict),
``in_channels``, ``num_classes`` / ``class_names`` for a classifier, ``format``} and the task's
``state_dict`` (keys ``model.*``).

Checkpoint formats: 1 (current) holds a :class:`~skeletonmae.models.encoder.JointEncoder` under
``encoder.*``; 0 (before the joint encoder was shared) kept each model's embedding and G_E under its own
names and the flat ``model`` config section. Format-0 checkpoints are migrated when loaded
(:func:`migrate_state`), so they keep working for inference, testing, export and as pre-trained encoders.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, EncoderConfig
from ..errors import CheckpointError
from ..fileio import atomic_open
from .contrastive import GraphContrast
from .skeletonmae import SkeletonMAE
from .ssl import SSLClassifier

FORMAT = 1


def build_pretrain_model(cfg: Config, in_channels: int) -> SkeletonMAE | GraphContrast:
    """The model that pre-trains G_E by ``pretrain.method``: SkeletonMAE (§3.1), GraphCL or JOAO (Tab. 4b)."""
    if cfg.pretrain.method == "skeletonmae":
        return SkeletonMAE(cfg.encoder, cfg.mae, in_channels)
    return GraphContrast(cfg.encoder, cfg.contrast, in_channels, method=cfg.pretrain.method)


def build_classifier(cfg: Config, in_channels: int, num_classes: int) -> SSLClassifier:
    """The SSL classifier of §3.2 for clips of ``data.clip_len`` frames."""
    return SSLClassifier(cfg.encoder, cfg.classifier, in_channels, num_classes, cfg.data.clip_len)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; check the path")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated / foreign files
        why = (str(e).splitlines() or ["empty file"])[0][:200]
        raise CheckpointError(
            f"checkpoint {path} could not be loaded safely ({type(e).__name__}: {why}); "
            "it is truncated, not a SkeletonMAE checkpoint, or holds objects other than tensors and plain data"
        ) from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} is not a SkeletonMAE checkpoint (it holds a {type(ckpt).__name__})")
    return ckpt


def _source(source: str | Path | dict) -> tuple[dict, str]:
    """(checkpoint dict, a name for messages)."""
    return (source, "the checkpoint") if isinstance(source, dict) else (load_checkpoint(source), str(source))


# Format 0 -> 1: each model's embedding and G_E moved into its JointEncoder (first match wins).
_MIGRATIONS = {
    "pretrain": [(r"^encoder\.", "encoder.graph."), (r"^embed\.", "encoder.embed."),
                 (r"^joint_embed$", "encoder.joint_embed")],
    "classifier": [(r"^layers\.0\.sm\.encoder\.", "encoder.graph."), (r"^embed\.", "encoder.embed."),
                   (r"^joint_embed$", "encoder.joint_embed")],
}


def migrate_state(state: dict[str, torch.Tensor], kind: str, version: int) -> dict[str, torch.Tensor]:
    """A model state dict of checkpoint format ``version`` in the current format (``kind``: pretrain|classifier)."""
    if version >= FORMAT:
        return state
    out = {}
    for key, value in state.items():
        for pattern, new in _MIGRATIONS[kind]:
            if re.search(pattern, key):
                key = re.sub(pattern, new, key)
                break
        else:  # a deeper STRL layer's G_E: layers.i.sm.encoder.* -> graphs.(i-1).*
            key = re.sub(r"^layers\.(\d+)\.sm\.encoder\.", lambda m: f"graphs.{int(m.group(1)) - 1}.", key)
        out[key] = value
    return out


def _model_state(ckpt: dict, kind: str) -> dict[str, torch.Tensor]:
    hp = ckpt["hyper_parameters"]
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    return migrate_state(state, kind, int(hp.get("format", 0)))


def _load_state(model: torch.nn.Module, state: dict, name: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{name}: its weights do not fit the model its own config describes "
                              f"({str(e).splitlines()[0][:300]}); the file was altered or is damaged") from e
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{name} holds NaN/inf weights ({bad[0]}, {len(bad)} tensor(s) in all); the run "
                              "diverged or the file is damaged: use an earlier checkpoint")


def _hyper_parameters(ckpt: dict, name: str, needed: set[str], kind: str) -> dict:
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict) or not needed <= set(hp) or "state_dict" not in ckpt:
        raise CheckpointError(f"{name} is not a SkeletonMAE {kind} checkpoint (no config / weights for one in it)")
    return hp


def load_pretrained(source: str | Path | dict) -> tuple[SkeletonMAE | GraphContrast, Config]:
    """The pre-trained model (its ``encoder`` is the joint encoder) and its config, from a checkpoint path or dict."""
    ckpt, name = _source(source)
    hp = _hyper_parameters(ckpt, name, {"config", "in_channels"}, "pre-training")
    if "num_classes" in hp:
        raise CheckpointError(f"{name} is a fine-tuned classifier, not a pre-training checkpoint; give the "
                              "checkpoint `skeletonmae pretrain` wrote (RUN/checkpoints/last.ckpt)")
    cfg = Config.from_dict(hp["config"])
    model = build_pretrain_model(cfg, int(hp["in_channels"]))
    _load_state(model, _model_state(ckpt, "pretrain"), name)
    return model.eval(), cfg


def load_classifier(source: str | Path | dict) -> tuple[SSLClassifier, Config]:
    """A fine-tuned SSL classifier (eval mode) and its config from a fine-tuning checkpoint (path or dict)."""
    ckpt, name = _source(source)
    hp = _hyper_parameters(ckpt, name, {"config", "in_channels", "num_classes"}, "fine-tuning")
    cfg = Config.from_dict(hp["config"])
    model = build_classifier(cfg, int(hp["in_channels"]), int(hp["num_classes"]))
    _load_state(model, _model_state(ckpt, "classifier"), name)
    return model.eval(), cfg


def class_names(ckpt: dict) -> list[str] | None:
    """The class names a fine-tuning checkpoint stores, if any."""
    names = ckpt.get("hyper_parameters", {}).get("class_names")
    return list(names) if names else None


# -- pre-trained encoders, on their own ---------------------------------------------------------------------
ENCODERS = Path(__file__).resolve().parents[1] / "encoders"  # the packaged ones (src/skeletonmae/encoders)
DATA_KEYS = ("normalize", "motion", "bone", "use_score")  # data settings an encoder's input depends on


@dataclass
class PretrainedEncoder:
    """A pre-trained joint encoder: what fine-tuning loads (weights, architecture, input) and where it came from.

    ``data`` holds the ``data.*`` settings its input was made with (normalisation, channels); ``card`` the model
    card of a packaged encoder (corpus, command, commit, wall time, losses)."""

    name: str
    config: EncoderConfig
    in_channels: int
    state: dict[str, torch.Tensor]
    data: dict
    card: dict

    def differences(self, cfg: Config, in_channels: int) -> tuple[list[str], list[str]]:
        """(what keeps this encoder's weights from fitting a model of ``cfg`` on data of ``in_channels``: encoder
        config and input channels; the ``data.*`` settings that differ from its pre-training's). Both empty: it
        fits exactly."""
        fit = [f"encoder.{k}: encoder {_shown(getattr(self.config, k))}, config {_shown(getattr(cfg.encoder, k))}"
               for k in EncoderConfig.__dataclass_fields__ if getattr(self.config, k) != getattr(cfg.encoder, k)]
        if self.in_channels != in_channels:
            fit.append(f"input channels: encoder C = {self.in_channels}, data C = {in_channels} (data.use_score, "
                       "data.motion, data.bone, 2D/3D)")
        data = [f"data.{k}: encoder {v!r}, config {getattr(cfg.data, k)!r}" for k, v in self.data.items()
                if getattr(cfg.data, k) != v]
        return fit, data


def _shown(value) -> str:
    """A config value for a message; a layout definition (from a layout file) by its name, not its joints."""
    return f"layout file '{value.get('name')}'" if isinstance(value, dict) else repr(value)


def save_encoder(checkpoint: str | Path, path: str | Path, card: dict) -> Path:
    """Write the joint encoder of a pre-training checkpoint, its config, input settings and ``card`` to ``path``."""
    model, cfg = load_pretrained(checkpoint)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, "encoder": dataclasses.asdict(cfg.encoder), "in_channels": model.in_channels,
                    "data": {k: getattr(cfg.data, k) for k in DATA_KEYS}, "state_dict": model.encoder_state(),
                    "card": card}, f)
    return path


def load_encoder(source: str | Path) -> PretrainedEncoder:
    """A pre-trained encoder from an encoder file (:func:`save_encoder`) or a pre-training checkpoint."""
    ckpt = load_checkpoint(source)
    name = Path(source).stem
    if "hyper_parameters" in ckpt:
        model, cfg = load_pretrained(ckpt)
        return PretrainedEncoder(name, cfg.encoder, model.in_channels, model.encoder_state(),
                                 {k: getattr(cfg.data, k) for k in DATA_KEYS}, {"source": str(source)})
    if not {"encoder", "in_channels", "state_dict", "data"} <= set(ckpt):
        raise CheckpointError(f"{source} is neither a pre-training checkpoint nor an encoder file")
    try:
        config = EncoderConfig(**ckpt["encoder"])
    except TypeError as e:
        raise CheckpointError(f"{source}: its encoder config does not fit this version ({e})") from e
    return PretrainedEncoder(name, config, int(ckpt["in_channels"]), ckpt["state_dict"], dict(ckpt["data"]),
                             dict(ckpt.get("card", {})))


def packaged_encoders() -> dict[str, Path]:
    """The encoders shipped in the package, by name."""
    return {p.stem: p for p in sorted(ENCODERS.glob("*.pt"))}


def find_packaged_encoder(cfg: Config, in_channels: int) -> tuple[PretrainedEncoder | None, str]:
    """The packaged encoder that fits a model of ``cfg`` on data of ``in_channels`` (``finetune.pretrained=auto``),
    or None and why none does."""
    why = []
    for path in packaged_encoders().values():
        encoder = load_encoder(path)
        diff = sum(encoder.differences(cfg, in_channels), [])
        if not diff:
            return encoder, f"packaged encoder '{encoder.name}'"
        why.append(f"'{encoder.name}' differs in " + "; ".join(diff))
    return None, "no packaged encoder fits this model: " + (" | ".join(why) or "none is installed")
