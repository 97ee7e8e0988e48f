"""The ``nn.Module`` twins of the functional losses (``la.nn.FocalLoss`` for ``la.focal_loss``).

Each is a thin wrapper: options are keyword-only, checked at construction, tensor options are
registered buffers, and ``forward`` calls the functional. See the functional for the docs.
"""

from lossatlas._module import LossModule
from lossatlas.classification.focal import (
    BalancedBinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    FocalWrapper,
)
from lossatlas.classification.poly import Poly1CrossEntropyLoss
from lossatlas.classification.class_balanced import ClassBalancedLoss
from lossatlas.sequence.ctc import CTCLoss
from lossatlas.distribution.divergence import JSDivLoss, KLDivLoss
from lossatlas.classification.margin_softmax import ArcFaceLoss, CosFaceLoss, SphereFaceLoss
from lossatlas.regression.likelihood import GaussianNLLLoss, PoissonNLLLoss
from lossatlas.detection.ghm import GHMCLoss, GHMRLoss
from lossatlas.detection.iou import CIoULoss, DIoULoss, GIoULoss, IoULoss
from lossatlas.detection.ssd import SSDLoss
from lossatlas.generative.gan import GANDiscriminatorLoss, GANGeneratorLoss
from lossatlas.generative.perceptual import PerceptualLoss
from lossatlas.regression.quantile import MAPELoss, QuantileLoss, SMAPELoss
from lossatlas.ranking.contrastive import ContrastiveLoss, InfoNCELoss
from lossatlas.language.sampled import NCELoss, NegativeSamplingLoss, SampledSoftmaxLoss
from lossatlas.language.linear_cross_entropy import LinearCrossEntropyLoss
from lossatlas.ranking.embedding import (
    CosineEmbeddingLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from lossatlas.regression.pointwise import (
    HuberLoss,
    L1Loss,
    LogCoshLoss,
    MSELoss,
    PseudoHuberLoss,
    RMSELoss,
    SmoothL1Loss,
)
from lossatlas.classification.margin import (
    ExponentialLoss,
    HingeLoss,
    LogisticLoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    PerceptronLoss,
    SoftMarginLoss,
    SquaredHingeLoss,
    ZeroOneLoss,
)
from lossatlas.classification.cross_entropy import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    LabelSmoothingCrossEntropyLoss,
    NLLLoss,
)
from lossatlas.segmentation.dice import (
    BinaryDiceLoss,
    BinaryJaccardLoss,
    DiceLoss,
    JaccardLoss,
)
from lossatlas.segmentation.tversky import (
    BinaryFocalTverskyLoss,
    BinaryTverskyLoss,
    FocalTverskyLoss,
    TverskyLoss,
)
from lossatlas.segmentation.dsc import BinaryDSCLoss, DSCLoss
from lossatlas.segmentation.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from lossatlas.segmentation.compound import DiceCELoss, DiceFocalLoss

__all__ = [
    "DiceCELoss",
    "DiceFocalLoss",
    "BalancedBinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "FocalLoss",
    "FocalWrapper",
    "Poly1CrossEntropyLoss",
    "ClassBalancedLoss",
    "CTCLoss",
    "JSDivLoss",
    "KLDivLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "BinaryDSCLoss",
    "DSCLoss",
    "BinaryFocalTverskyLoss",
    "BinaryTverskyLoss",
    "FocalTverskyLoss",
    "TverskyLoss",
    "BinaryDiceLoss",
    "BinaryJaccardLoss",
    "DiceLoss",
    "JaccardLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "SphereFaceLoss",
    "GaussianNLLLoss",
    "PoissonNLLLoss",
    "CIoULoss",
    "DIoULoss",
    "GHMCLoss",
    "GHMRLoss",
    "GIoULoss",
    "IoULoss",
    "SSDLoss",
    "MAPELoss",
    "QuantileLoss",
    "SMAPELoss",
    "ContrastiveLoss",
    "InfoNCELoss",
    "CosineEmbeddingLoss",
    "HingeEmbeddingLoss",
    "MarginRankingLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "HuberLoss",
    "L1Loss",
    "LogCoshLoss",
    "MSELoss",
    "PseudoHuberLoss",
    "RMSELoss",
    "SmoothL1Loss",
    "ExponentialLoss",
    "HingeLoss",
    "LogisticLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "PerceptronLoss",
    "SoftMarginLoss",
    "SquaredHingeLoss",
    "ZeroOneLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "LabelSmoothingCrossEntropyLoss",
    "LinearCrossEntropyLoss",
    "LossModule",
    "GANGeneratorLoss",
    "GANDiscriminatorLoss",
    "PerceptualLoss",
    "SampledSoftmaxLoss",
    "NegativeSamplingLoss",
    "NCELoss",
    "NLLLoss",
]
