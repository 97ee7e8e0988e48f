"""lossatlas: every PyTorch loss in one place, organised by task.

>>> import torch
>>> import lossatlas as la
>>> la.cross_entropy(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
tensor(1.3133)

Functional losses live at the top level (``la.focal_loss``), their ``nn.Module`` twins in
:mod:`lossatlas.nn` (``la.nn.FocalLoss``), and every loss's declaration in the catalog
(``la.catalog()``, ``la.get(name)``, ``la.for_task(task)``). Each family module's ``__all__``
lists its public functionals; they are re-exported here.
"""

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
from lossatlas._fused import fused, fused_enabled, set_fused
from lossatlas._reduction import reduce_loss
from lossatlas._validation import set_value_checks, value_checks, value_checks_enabled
from lossatlas.activations import (
    ACTIVATIONS,
    Maxout,
    Swish,
    activation,
    hardmax,
    maxout,
    swish,
)
from lossatlas.compose import CombinedLoss, LossParts, combine
from lossatlas.monitor import LossHistory
from lossatlas.plot import loss_curve, plot_activation, plot_loss

# Classification (binary, multi-label, multi-class, imbalance)
from lossatlas.classification.cross_entropy import *
from lossatlas.classification.focal import *
from lossatlas.classification.poly import *
from lossatlas.classification.class_balanced import *
from lossatlas.classification.margin import *
from lossatlas.classification.margin_softmax import *

# Regression and distributions
from lossatlas.regression.pointwise import *
from lossatlas.regression.quantile import *
from lossatlas.regression.likelihood import *
from lossatlas.distribution.divergence import *

# Ranking, embeddings, metric learning
from lossatlas.ranking.embedding import *
from lossatlas.ranking.contrastive import *

# Segmentation
from lossatlas.segmentation.dice import *
from lossatlas.segmentation.tversky import *
from lossatlas.segmentation.dsc import *
from lossatlas.segmentation.lovasz import *
from lossatlas.segmentation.compound import *

# Detection
from lossatlas.detection.boxes import *
from lossatlas.detection.ssd import *
from lossatlas.detection.iou import *
from lossatlas.detection.ghm import *

# Large vocabularies, sequences, generative models
from lossatlas.language.sampled import *
from lossatlas.language.linear_cross_entropy import *
from lossatlas.sequence.ctc import *
from lossatlas.generative.gan import *
from lossatlas.generative.perceptual import *

from lossatlas import nn

__version__ = "0.1.0"
