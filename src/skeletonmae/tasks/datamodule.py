"""The LightningDataModule of a run: :class:`~skeletonmae.data.dataset.SkeletonData` for the Trainer.

Training batches are shuffled by (seed, epoch) and Lightning splits them between processes. Test batches are
split between processes without repeating a sample (``UnrepeatedDistributedSampler``), so that metrics
synchronised over the processes count every test clip exactly once: testing runs on every rank.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from ..config import Config
from ..data.dataset import SkeletonData


class SkeletonDataModule(L.LightningDataModule):
    """Train / test loaders of ``data`` for the Trainer; ``test_split`` picks the split :meth:`test_dataloader`
    reads (default ``data.test_split``)."""

    def __init__(self, data: SkeletonData, test_split: str | None = None):
        super().__init__()
        self.data, self.test_split = data, test_split

    @classmethod
    def from_config(cls, cfg: Config, batch_size: int, **kw) -> SkeletonDataModule:
        return cls(SkeletonData(cfg, batch_size, **kw))

    def train_dataloader(self) -> DataLoader:
        return self.data.train_dataloader()

    def test_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return self.data.test_dataloader(self.test_split)
        return self.data.test_dataloader(self.test_split, lambda dataset: UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False))
