"""Using a fine-tuned classifier on new pose sequences: ``load`` a checkpoint or a packaged classifier, ``predict``
on arrays.

    from skeletonmae.inference import load
    predictor = load("runs/penn_ft/checkpoints/last.ckpt")  # or a packaged classifier: load("penn_action")
    result = predictor.predict(keypoint, keypoint_score, img_shape=(480, 640), layout="coco17")
    result["top"]  # [(class name, probability), ...]

Inputs go through the checkpoint's own test pipeline (joint mapping from ``layout``, normalisation,
K-clip sampling), so arrays in any known layout, in pixels (2D) or in camera units (3D), are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .data.annotations import check_sample
from .data.dataset import config_pipeline
from .errors import ConfigError, DataError
from .models.build import class_names, load_checkpoint, load_classifier
from .skeleton import get_layout
from .zoo import classifier_file


class Predictor:
    """A fine-tuned SSL classifier with its test pipeline and class names."""

    def __init__(self, model: torch.nn.Module, cfg: Config, class_names: list[str] | None = None,
                 device: str | torch.device = "cpu"):
        self.model, self.cfg, self.device = model.eval().to(device), cfg, device
        self.num_classes = model.num_classes
        self.class_names = list(class_names or [f"class {i}" for i in range(self.num_classes)])
        self.coords = cfg.data.coordinates(model.encoder.in_channels)  # 2 (2D) or 3 (3D), as trained

    @torch.no_grad()
    def predict_samples(self, samples: list[dict], layout: str | None = None, top_k: int = 5,
                        batch_size: int = 16) -> list[dict]:
        """Predictions for annotation dicts (PYSKL format): each ``{frame_dir, scores, top, label?}``; ``label`` is
        kept only where the sample has one (>= 0; -1 means "no label")."""
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be an int >= 1, got {top_k!r}")
        if not samples:
            raise DataError("nothing to classify: the input holds no clip")
        layout = get_layout(layout or self.cfg.data.layout)
        problems = [p for i, s in enumerate(samples) for p in check_sample(s, i, "input", layout, None, labelled=False)]
        if problems:
            raise DataError("the input cannot be classified:\n  " + "\n  ".join(problems[:10]))
        given = {s["keypoint"].shape[-1] for s in samples}
        if given != {self.coords}:
            kinds = {2: "2D (x, y)", 3: "3D (x, y, z)"}
            raise DataError(f"the model was trained on {kinds[self.coords]} joints; the input has "
                            f"{' and '.join(kinds.get(c, f'C = {c}') for c in sorted(given))} joints")
        is_3d = self.coords == 3
        pipeline = config_pipeline(self.cfg, is_3d, train=False, source_layout=layout)
        out = []
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            # test pipelines draw nothing; a Generator per clip keeps the call honest all the same
            x = torch.from_numpy(np.stack([pipeline(s, np.random.default_rng(start + i))["keypoint"]
                                           for i, s in enumerate(chunk)])).to(self.device)
            probs = self.model.predict_clips(x).cpu().numpy()
            for s, p in zip(chunk, probs, strict=True):
                order = np.argsort(-p)[:top_k]
                out.append({"frame_dir": s.get("frame_dir", ""), "scores": p.tolist(),
                            "top": [(self.class_names[c], float(p[c])) for c in order],
                            **({"label": int(s["label"])} if int(s.get("label", -1)) >= 0 else {})})
        return out

    def predict(self, keypoint: np.ndarray, keypoint_score: np.ndarray | None = None,
                img_shape: tuple[int, int] | None = None, layout: str | None = None, top_k: int = 5) -> dict:
        """Classify one clip: ``keypoint`` [M, T, V, C] (or [T, V, C]); for 2D, scores [M, T, V] (default 1).

        A 2D model also takes C = 3 as (x, y, confidence), the most common raw format of pose estimators.
        ``img_shape`` (height, width) is needed only when the model normalises by the frame (data.normalize=fix).
        """
        keypoint = np.asarray(keypoint, dtype=np.float32)
        if keypoint.ndim == 3:
            keypoint = keypoint[None]
            keypoint_score = None if keypoint_score is None else np.asarray(keypoint_score)[None]
        if keypoint.ndim != 4:
            raise DataError(f"keypoint must be [T, V, C] or [M, T, V, C], got shape {list(keypoint.shape)}")
        if self.coords == 2 and keypoint.shape[-1] == 3 and keypoint_score is None:
            keypoint, keypoint_score = keypoint[..., :2], keypoint[..., 2]
        sample = {"frame_dir": "input", "label": -1, "keypoint": keypoint, "total_frames": keypoint.shape[1]}
        if keypoint.shape[-1] == 2:
            if img_shape is None:
                if self.cfg.data.normalize == "fix":
                    raise DataError("this model normalises 2D joints by the frame: give img_shape (height, width) "
                                    "of the frames the poses came from")
                img_shape = tuple(max(1, int(np.nan_to_num(keypoint[..., i]).max()) + 1) for i in (1, 0))
            sample["img_shape"] = tuple(int(v) for v in img_shape)
            sample["keypoint_score"] = (np.ones(keypoint.shape[:3], np.float32) if keypoint_score is None
                                        else np.asarray(keypoint_score, dtype=np.float32))
        return self.predict_samples([sample], layout=layout, top_k=top_k)[0]


def load(source: str | Path, device: str | torch.device = "cpu",
         classifiers: Sequence[str | Path] | None = None) -> Predictor:
    """A :class:`Predictor` from a fine-tuning checkpoint, a packaged classifier file, or the name of a packaged
    classifier, looked for in the folders ``classifiers`` (default: the package's and those the environment
    variable SKELETONMAE_CLASSIFIERS names). Class names come from the file, if it stores them."""
    ckpt = load_checkpoint(classifier_file(source, classifiers))
    model, cfg = load_classifier(ckpt)
    return Predictor(model, cfg, class_names(ckpt), device)
