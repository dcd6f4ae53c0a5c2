"""The LightningDataModule of a run: :class:`~skeletonmae.data.dataset.SkeletonData` for the Trainer.

Training batches are shuffled by (seed, epoch) and Lightning splits them between processes. Validation and test
batches are split between processes without repeating a sample (``UnrepeatedDistributedSampler``), so that
metrics synchronised over the processes count every clip exactly once: testing runs on every rank.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from ..config import Config
from ..data.dataset import SkeletonData


class SkeletonDataModule(L.LightningDataModule):
    """Train / test loaders of ``data`` for the Trainer; ``test_split`` picks the split :meth:`test_dataloader`
    reads (default ``data.test_split``); ``test_validation`` makes it read the validation part instead (to write
    its class scores)."""

    def __init__(self, data: SkeletonData, test_split: str | None = None, test_validation: bool = False):
        super().__init__()
        self.data, self.test_split, self.test_validation = data, test_split, test_validation

    @classmethod
    def from_config(cls, cfg: Config, batch_size: int, **kw) -> SkeletonDataModule:
        return cls(SkeletonData(cfg, batch_size, **kw))

    def train_dataloader(self) -> DataLoader:
        return self.data.train_dataloader()

    def val_dataloader(self) -> DataLoader:
        """K test clips per held-out training clip (``data.val_fraction``); split between processes as the test."""
        return self.data.test_dataloader(samples=self.data.val_samples(), sampler_factory=self._sampler_factory())

    def _sampler_factory(self):
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        return lambda dataset: UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size,
                                                            rank=trainer.global_rank, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_validation:
            return self.val_dataloader()
        return self.data.test_dataloader(self.test_split, self._sampler_factory())
