"""The small models ``lossatlas compare`` trains: an MLP, a dilated conv net, an embedding net.

Each task builds its model with ``make_model(data)``; the builders here are module-level
functions (or ``functools.partial`` of them) so that a task can be shipped to a worker process.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas.lab.data import Dataset

__all__ = ["EMBEDDING_DIM", "MLP", "EmbeddingNet", "TinySegNet", "embedding_net", "mlp", "seg_net"]

#: Width of the metric-learning embeddings (and of the ArcFace class centres).
EMBEDDING_DIM = 32


class MLP(nn.Sequential):
    """``in -> hidden -> hidden -> out`` with ReLU; ``out == 1`` squeezes to ``(N,)``."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64) -> None:
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )
        self.squeeze = out_features == 1

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out.squeeze(1) if self.squeeze else out


class TinySegNet(nn.Module):
    """Four 3x3 convolutions with dilations 1, 2, 4, 1 (receptive field 17 px), then 1x1."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for dilation in (1, 2, 4, 1):
            layers += [
                nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                nn.ReLU(),
            ]
            channels = width
        layers.append(nn.Conv2d(width, num_classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EmbeddingNet(nn.Module):
    """An MLP whose output is L2-normalised (embeddings on the unit sphere)."""

    def __init__(self, in_features: int, dim: int = EMBEDDING_DIM, hidden: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x), dim=1)


def _in_features(data: Dataset) -> int:
    return int(data.train.x.shape[1])


def mlp(data: Dataset, *, hidden: int = 64, per_class: bool = False) -> MLP:
    """An :class:`MLP` for tabular ``data``: one output (a value or a logit), or one per class."""
    return MLP(_in_features(data), (data.num_classes or 2) if per_class else 1, hidden=hidden)


def seg_net(data: Dataset) -> TinySegNet:
    """A :class:`TinySegNet` with one output channel per class of ``data``."""
    return TinySegNet(data.num_classes or 2)


def embedding_net(data: Dataset) -> EmbeddingNet:
    """An :class:`EmbeddingNet` of width :data:`EMBEDDING_DIM` for ``data``'s features."""
    return EmbeddingNet(_in_features(data), EMBEDDING_DIM)
