"""A classifier that computes its input stream itself: what an exported model of ``data.stream`` != joint takes.

The data pipeline turns joint coordinates into the channels a model was trained on (data/transforms.py:
the stream's coordinates, their velocity with ``data.motion``, their bone vectors with ``data.bone``, the score
last). :class:`StreamInput` does the same inside the network, with the very functions the pipeline uses, so an
ONNX file of a bone-stream model takes joints (and scores) and computes the bones in its graph.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..data.transforms import derived_channels


class StreamInput(nn.Module):
    """``classifier`` behind the channel computation of ``cfg.data``: input [N, P, T, V, C (+ score)] joints."""

    def __init__(self, classifier: nn.Module, cfg: Config):
        super().__init__()
        d = cfg.data
        self.classifier, self.stream, self.motion, self.bone = classifier, d.stream, d.motion, d.bone
        self.coordinates = d.coordinates(classifier.encoder.in_channels)
        self.parents = classifier.encoder.layout.parents()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = x[..., : self.coordinates]
        parts = derived_channels(coords, self.stream, self.motion, self.bone, self.parents)
        return self.classifier(torch.cat([*parts, x[..., self.coordinates:]], dim=-1))
