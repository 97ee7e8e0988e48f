"""lossatlas: every PyTorch loss in one place, organised by task.

>>> import torch
>>> import lossatlas as la
>>> la.cross_entropy(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
tensor(1.3133)

Functional losses live at the top level (``la.focal_loss``), their ``nn.Module`` twins in
:mod:`lossatlas.nn` (``la.nn.FocalLoss``), and every loss's declaration in the catalog
(``la.catalog()``, ``la.get(name)``, ``la.for_task(task)``).
"""

from lossatlas._fused import fused, fused_enabled, set_fused
from lossatlas._reduction import reduce_loss
from lossatlas._validation import set_value_checks, value_checks, value_checks_enabled
from lossatlas.compose import CombinedLoss, LossParts, combine
from lossatlas.monitor import LossHistory
from lossatlas.plot import loss_curve, plot_activation, plot_loss
from lossatlas._catalog import (
    TASKS,
    Example,
    LossSpec,
    catalog,
    for_task,
    get,
    register,
    unregister,
)

# Loss families: each module's ``__all__`` lists its public functionals.
from lossatlas.classification.cross_entropy import *  # noqa: F403  isort: skip
from lossatlas.classification.focal import *  # noqa: F403  isort: skip
from lossatlas.classification.poly import *  # noqa: F403  isort: skip
from lossatlas.classification.class_balanced import *  # noqa: F403  isort: skip
from lossatlas.detection.boxes import *  # noqa: F403  isort: skip
from lossatlas.detection.ssd import *  # noqa: F403  isort: skip
from lossatlas.detection.iou import *  # noqa: F403  isort: skip
from lossatlas.detection.ghm import *  # noqa: F403  isort: skip
from lossatlas.language.sampled import *  # noqa: F403  isort: skip
from lossatlas.language.linear_cross_entropy import *  # noqa: F403  isort: skip
from lossatlas.generative.gan import *  # noqa: F403  isort: skip
from lossatlas.generative.perceptual import *  # noqa: F403  isort: skip
from lossatlas.classification.margin import *  # noqa: F403  isort: skip
from lossatlas.classification.margin_softmax import *  # noqa: F403  isort: skip
from lossatlas.ranking.embedding import *  # noqa: F403  isort: skip
from lossatlas.ranking.contrastive import *  # noqa: F403  isort: skip
from lossatlas.regression.pointwise import *  # noqa: F403  isort: skip
from lossatlas.regression.quantile import *  # noqa: F403  isort: skip
from lossatlas.regression.likelihood import *  # noqa: F403  isort: skip
from lossatlas.distribution.divergence import *  # noqa: F403  isort: skip
from lossatlas.sequence.ctc import *  # noqa: F403  isort: skip
from lossatlas.segmentation.dice import *  # noqa: F403  isort: skip
from lossatlas.segmentation.tversky import *  # noqa: F403  isort: skip
from lossatlas.segmentation.dsc import *  # noqa: F403  isort: skip
from lossatlas.segmentation.lovasz import *  # noqa: F403  isort: skip
from lossatlas.segmentation.compound import *  # noqa: F403  isort: skip

from lossatlas.activations import (  # noqa: E402  isort: skip
    ACTIVATIONS,
    Maxout,
    Swish,
    activation,
    hardmax,
    maxout,
    swish,
)
from lossatlas import nn  # noqa: E402  isort: skip

__version__ = "0.1.0"
