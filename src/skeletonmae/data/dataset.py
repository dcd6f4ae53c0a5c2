"""The data of a run: an annotation pickle, its splits and the pipelines the config describes; batches out.

A batch is ``(x, label, index)`` with ``x`` float32 [N, K, P, T, V, C] (K = 1 in training, K test
clips at test time), ``label`` int64 [N] and ``index`` int64 [N] (position in the split, so
predictions can be written next to their ``frame_dir``). No Lightning here: training wraps
:class:`SkeletonData` in a LightningDataModule (tasks/datamodule.py); inference and figures use it as is.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import Config
from ..errors import ConfigError, DataError
from ..skeleton import Layout
from .annotations import AnnotationFile, load_annotations
from .transforms import Compose, build_pipeline


class SkeletonDataset(Dataset):
    """Samples of one split, each passed through ``pipeline`` when read.

    A key is an index, or ``(index, seed)`` from :class:`EpochShuffle`. The pipeline draws from a Generator
    made for this one read, ``np.random.default_rng(seed)``: the sample's augmentation depends only on that
    seed (so on the trainer seed, the epoch and the index), not on which worker reads it, on what that worker
    read before, or on an interrupted run. A bare index (test loaders, no shuffle) gets a Generator seeded
    with the index itself, so every read of it is the same (test pipelines draw nothing anyway).
    """

    def __init__(self, samples: list[dict], pipeline: Compose):
        self.samples, self.pipeline = samples, pipeline

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]):
        i, seed = key if isinstance(key, tuple) else (key, None)
        rng = np.random.default_rng(i if seed is None else seed)
        sample = self.samples[i]
        x = self.pipeline(sample, rng)["keypoint"]
        return torch.from_numpy(x), int(sample["label"]), i


class EpochShuffle(Sampler):
    """A shuffle that depends only on (seed, epoch); yields ``(index, per-sample augmentation seed)``.

    Lightning calls ``set_epoch`` every epoch, so a run resumed at an epoch boundary sees exactly the
    batches and augmentations of an uninterrupted run with the same seed.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order, seeds = rng.permutation(self.size), rng.integers(0, 2**32, size=self.size)
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


def config_pipeline(cfg: Config, is_3d: bool, train: bool, source_layout: str | Layout | None = None) -> Compose:
    """The pipeline ``cfg.data`` describes, from ``source_layout`` (default ``data.layout``) to the model's."""
    d = cfg.data
    return build_pipeline(
        source_layout=source_layout or d.layout,
        target_layout=cfg.encoder.layout,
        is_3d=is_3d,
        clip_len=d.clip_len,
        num_persons=d.num_persons,
        train=train,
        num_clips=d.test_clips,
        use_score=d.use_score,
        motion=d.motion,
        bone=d.bone,
        stream=d.stream,
        pixel_noise=d.pixel_noise,
        normalize=d.normalize,
        score_threshold=d.score_threshold,
        rotate_deg=d.rotate_deg,
        scale=d.scale,
        flip=d.flip,
        test_flip=d.test_flip,
    )


def stratified_subset(samples: list[dict], fraction: float = 1.0, per_class: int = 0, seed: int = 0) -> list[dict]:
    """A class-stratified subset: ``per_class`` clips of every class, or ``fraction`` of each (>= 1 each).

    The choice depends only on the seed and the samples, so every run with that seed sees the same labels.
    """
    if fraction >= 1 and per_class <= 0:
        return samples
    labels = np.array([int(s["label"]) for s in samples])
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = min(len(idx), per_class) if per_class > 0 else max(1, int(round(fraction * len(idx))))
        keep.extend(rng.choice(idx, size=n, replace=False).tolist())
    return [samples[i] for i in sorted(keep)]


def validation_split(samples: list[dict], fraction: float, group: str = "", seed: int = 0
                     ) -> tuple[list[dict], list[dict]]:
    """(train, validation): about ``fraction`` of ``samples`` held out, stratified by class.

    ``group`` is a regular expression whose first group names a clip's subject in its ``frame_dir`` (e.g.
    ``_s(\\d+)``): whole subjects are then held out (scikit-learn's StratifiedGroupKFold, first fold), so that
    validation, like a cross-subject test split, sees no one it trained on. Without it, each class gives
    ``floor(fraction * n)`` of its clips (a class of one clip gives none).
    """
    if fraction <= 0:
        return samples, []
    labels = np.array([int(s["label"]) for s in samples])
    rng = np.random.default_rng(seed)
    if group:
        from sklearn.model_selection import StratifiedGroupKFold

        try:
            pattern = re.compile(group)
        except re.error as e:
            raise ConfigError(f"data.val_group {group!r} is not a regular expression ({e})") from e
        found = [pattern.search(str(s["frame_dir"])) for s in samples]
        missing = [str(s["frame_dir"]) for s, m in zip(samples, found, strict=True) if m is None or not m.groups()]
        if missing:
            raise ConfigError(f"data.val_group {group!r} finds no group in frame_dir '{missing[0]}' "
                              f"({len(missing)} clips); give a regular expression with one group, e.g. '_s(\\d+)'")
        groups = np.array([m.group(1) for m in found])
        folds = max(2, round(1 / fraction))
        if len(np.unique(groups)) < folds:
            raise ConfigError(f"data.val_group {group!r} finds {len(np.unique(groups))} groups, too few to hold out "
                              f"{fraction:.0%} of them; lower data.val_fraction or set data.val_group=''")
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # classes rarer than the folds: the fold simply holds none of them
            warnings.simplefilter("ignore", UserWarning)
            _, held = next(splitter.split(np.zeros(len(samples)), labels, groups))
    else:
        held = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: int(fraction * (labels == c).sum())]
                               for c in np.unique(labels)]).astype(int)
    held_set = set(held.tolist())
    return ([s for i, s in enumerate(samples) if i not in held_set], [samples[i] for i in sorted(held_set)])


class SkeletonData:
    """Train / validation / test data of one annotation file, as configured in ``cfg.data``.

    The validation split (``data.val_fraction`` > 0) is carved from the training split before the labelled
    subset of the few-label protocol is drawn, and is the same for every seed (``data.val_seed``)."""

    def __init__(self, cfg: Config, batch_size: int, train_splits: list[str] | None = None, labelled: bool = True):
        self.cfg, self.batch_size, self.labelled = cfg, batch_size, labelled
        self.train_splits = train_splits or [cfg.data.train_split]
        self.file: AnnotationFile | None = None

    # Loaded eagerly, in the main process, so that forked workers share the arrays.
    def load(self) -> AnnotationFile:
        if self.file is None:
            d = self.cfg.data
            if not d.path:
                raise DataError("no data file given: set data.path (an annotation pickle) in the config")
            self.file = load_annotations(Path(d.path), layout=d.layout)
        return self.file

    @property
    def is_3d(self) -> bool:
        return self.load().num_channels == 3

    @property
    def num_classes(self) -> int:
        return self.load().num_classes

    @property
    def in_channels(self) -> int:
        d = self.cfg.data
        return self.load().num_channels * (1 + int(d.motion) + int(d.bone)) + int(d.use_score)

    def pipeline(self, train: bool) -> Compose:
        return config_pipeline(self.cfg, self.is_3d, train)

    def _train_val(self) -> tuple[list[dict], list[dict]]:
        f, d = self.load(), self.cfg.data
        samples = [s for split in self.train_splits for s in f.samples(split)]
        if not self.labelled:
            return samples, []
        return validation_split(samples, d.val_fraction, d.val_group, d.val_seed)

    def train_samples(self) -> list[dict]:
        d = self.cfg.data
        samples = self._train_val()[0]
        if self.labelled:
            samples = stratified_subset(samples, d.label_fraction, d.labels_per_class, d.label_seed)
        if not samples:
            raise DataError(f"{d.path}: the training split {self.train_splits} holds no clip to train on")
        return samples

    def val_samples(self) -> list[dict]:
        return self._train_val()[1]

    def test_samples(self, split: str | None = None) -> list[dict]:
        return self.load().samples(split or self.cfg.data.test_split)

    def _loader(self, dataset: Dataset, shuffle: bool, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        workers = self.cfg.data.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=EpochShuffle(len(dataset), self.cfg.trainer.seed) if shuffle else sampler,
            drop_last=shuffle and len(dataset) > batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            # fork shares the loaded arrays with the workers; other start methods would pickle a copy per worker
            multiprocessing_context="fork" if workers > 0 and sys.platform.startswith("linux") else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(SkeletonDataset(self.train_samples(), self.pipeline(train=True)), True, self.batch_size)

    def test_dataloader(self, split: str | None = None, sampler_factory: Callable | None = None,
                        samples: list[dict] | None = None) -> DataLoader:
        """K test clips per sample of ``split`` (or of ``samples``); ``sampler_factory(dataset)`` may split them
        between processes."""
        # K clips per sample make test batches K times larger: keep the number of clips per batch alike.
        clips = self.cfg.data.test_clips * (2 if self.cfg.data.test_flip else 1)
        batch = max(1, self.batch_size // clips)
        samples = self.test_samples(split) if samples is None else samples
        dataset = SkeletonDataset(samples, self.pipeline(train=False))
        return self._loader(dataset, False, batch, sampler_factory(dataset) if sampler_factory else None)


@torch.no_grad()
def collect(loader: DataLoader, fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str = "cpu"
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fn`` of every batch x [N, K, P, T, V, C] of ``loader``, concatenated: (outputs [N, ...], labels, index)."""
    outputs, labels, index = [], [], []
    for x, y, i in loader:
        outputs.append(fn(x.to(device)).cpu().numpy())
        labels.append(y.numpy())
        index.append(i.numpy())
    return np.concatenate(outputs), np.concatenate(labels), np.concatenate(index)
