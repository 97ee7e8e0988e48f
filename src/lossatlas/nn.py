"""The ``nn.Module`` twins of the functional losses (``la.nn.FocalLoss`` for ``la.focal_loss``).

Each is a thin wrapper: options are keyword-only, checked at construction, tensor options are
registered buffers, and ``forward`` calls the functional. See the functional for the docs.
"""

from lossatlas._module import LossModule
from lossatlas.classification.asymmetric import (
    AsymmetricLoss,
    AsymmetricSingleLabelLoss,
)
from lossatlas.classification.class_balanced import ClassBalancedLoss
from lossatlas.classification.cross_entropy import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    LabelSmoothingCrossEntropyLoss,
    NLLLoss,
)
from lossatlas.classification.focal import (
    BalancedBinaryCrossEntropyLoss,
    BinaryFocalLoss,
    FocalLoss,
    FocalWrapper,
)
from lossatlas.classification.long_tail import (
    BalancedSoftmaxLoss,
    LDAMLoss,
    LogitAdjustedCrossEntropyLoss,
)
from lossatlas.classification.margin import (
    ExponentialLoss,
    HingeLoss,
    LogisticLoss,
    PerceptronLoss,
    SquaredHingeLoss,
    ZeroOneLoss,
)
from lossatlas.classification.margin_softmax import ArcFaceLoss, CosFaceLoss, SphereFaceLoss
from lossatlas.classification.multi_margin import (
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    SoftMarginLoss,
)
from lossatlas.classification.noisy import (
    BinaryBiTemperedLogisticLoss,
    BiTemperedLogisticLoss,
    GeneralizedCrossEntropyLoss,
    SymmetricCrossEntropyLoss,
)
from lossatlas.classification.poly import Poly1CrossEntropyLoss
from lossatlas.classification.seesaw import (
    EQLv2Loss,
    SeesawLoss,
)
from lossatlas.detection.balanced_l1 import BalancedL1Loss
from lossatlas.detection.generalized_focal import (
    DistributionFocalLoss,
    QualityFocalLoss,
    VarifocalLoss,
)
from lossatlas.detection.ghm import GHMCLoss, GHMRLoss
from lossatlas.detection.iou import (
    CIoULoss,
    DIoULoss,
    EIoULoss,
    GIoULoss,
    IoULoss,
    SIoULoss,
)
from lossatlas.detection.ssd import SSDLoss
from lossatlas.distribution.divergence import JSDivLoss, KLDivLoss
from lossatlas.generative.gan import GANDiscriminatorLoss, GANGeneratorLoss
from lossatlas.generative.perceptual import PerceptualLoss
from lossatlas.image.pixel import PSNRLoss, TotalVariationLoss
from lossatlas.image.ssim import MSSSIMLoss, SSIMLoss
from lossatlas.language.distillation import (
    DistillationLoss,
    GeneralizedJSDLoss,
)
from lossatlas.language.fused_heads import LinearDistillationLoss
from lossatlas.language.linear_cross_entropy import LinearCrossEntropyLoss
from lossatlas.language.preference import (
    DPOLoss,
    KTOLoss,
    ORPOLoss,
    SimPOLoss,
)
from lossatlas.language.sampled import NCELoss, NegativeSamplingLoss, SampledSoftmaxLoss
from lossatlas.ranking.contrastive import ContrastiveLoss, InfoNCELoss
from lossatlas.ranking.embedding import (
    CosineEmbeddingLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from lossatlas.ranking.listwise import (
    ApproxNDCGLoss,
    LambdaLoss,
    ListMLELoss,
    ListNetLoss,
    RankingSoftmaxLoss,
    RankNetLoss,
)
from lossatlas.ranking.mined import MinedTripletLoss
from lossatlas.ranking.proxies import ProxyAnchorLoss, ProxyNCALoss
from lossatlas.ranking.siglip import SigLIPLoss
from lossatlas.ranking.supervised import (
    CircleLoss,
    LiftedStructureLoss,
    MinedContrastiveLoss,
    MultiSimilarityLoss,
    NPairLoss,
    SupConLoss,
)
from lossatlas.regression.landmark import AdaptiveWingLoss, WingLoss
from lossatlas.regression.likelihood import GaussianNLLLoss, PoissonNLLLoss
from lossatlas.regression.pointwise import (
    HuberLoss,
    L1Loss,
    LogCoshLoss,
    MSELoss,
    PseudoHuberLoss,
    RMSELoss,
    SmoothL1Loss,
)
from lossatlas.regression.quantile import MAPELoss, MSLELoss, QuantileLoss, SMAPELoss
from lossatlas.regression.robust import (
    CauchyLoss,
    CharbonnierLoss,
    GemanMcClureLoss,
    GeneralRobustLoss,
    WelschLoss,
)
from lossatlas.segmentation.boundary import BoundaryLoss, HausdorffDTLoss
from lossatlas.segmentation.compound import BinaryDiceCELoss, DiceCELoss, DiceFocalLoss
from lossatlas.segmentation.dice import BinaryDiceLoss, BinaryJaccardLoss, DiceLoss, JaccardLoss
from lossatlas.segmentation.dsc import BinaryDSCLoss, DSCLoss
from lossatlas.segmentation.from_probs import (
    DiceLossFromProbs,
    FocalTverskyLossFromProbs,
    JaccardLossFromProbs,
    TverskyLossFromProbs,
)
from lossatlas.segmentation.generalized_dice import (
    BinaryGeneralizedDiceLoss,
    GeneralizedDiceLoss,
    GeneralizedWassersteinDiceLoss,
)
from lossatlas.segmentation.lovasz import LovaszHingeLoss, LovaszSoftmaxLoss
from lossatlas.segmentation.mcc import BinaryMCCLoss, MCCLoss
from lossatlas.segmentation.skeleton import DiceClDiceLoss, SoftClDiceLoss
from lossatlas.segmentation.tversky import (
    BinaryFocalTverskyLoss,
    BinaryTverskyLoss,
    FocalTverskyLoss,
    TverskyLoss,
)
from lossatlas.sequence.ctc import CTCLoss

__all__ = [
    "AdaptiveWingLoss",
    "ApproxNDCGLoss",
    "ArcFaceLoss",
    "AsymmetricLoss",
    "AsymmetricSingleLabelLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BalancedBinaryCrossEntropyLoss",
    "BalancedL1Loss",
    "BalancedSoftmaxLoss",
    "BiTemperedLogisticLoss",
    "BinaryBiTemperedLogisticLoss",
    "BinaryDSCLoss",
    "BinaryDiceCELoss",
    "BinaryDiceLoss",
    "BinaryFocalLoss",
    "BinaryFocalTverskyLoss",
    "BinaryGeneralizedDiceLoss",
    "BinaryJaccardLoss",
    "BinaryMCCLoss",
    "BinaryTverskyLoss",
    "BoundaryLoss",
    "CIoULoss",
    "CTCLoss",
    "CauchyLoss",
    "CharbonnierLoss",
    "CircleLoss",
    "ClassBalancedLoss",
    "ContrastiveLoss",
    "CosFaceLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "DIoULoss",
    "DPOLoss",
    "DSCLoss",
    "DiceCELoss",
    "DiceClDiceLoss",
    "DiceFocalLoss",
    "DiceLoss",
    "DiceLossFromProbs",
    "DistillationLoss",
    "DistributionFocalLoss",
    "EIoULoss",
    "EQLv2Loss",
    "ExponentialLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "FocalTverskyLossFromProbs",
    "FocalWrapper",
    "GANDiscriminatorLoss",
    "GANGeneratorLoss",
    "GHMCLoss",
    "GHMRLoss",
    "GIoULoss",
    "GaussianNLLLoss",
    "GemanMcClureLoss",
    "GeneralRobustLoss",
    "GeneralizedCrossEntropyLoss",
    "GeneralizedDiceLoss",
    "GeneralizedJSDLoss",
    "GeneralizedWassersteinDiceLoss",
    "HausdorffDTLoss",
    "HingeEmbeddingLoss",
    "HingeLoss",
    "HuberLoss",
    "InfoNCELoss",
    "IoULoss",
    "JSDivLoss",
    "JaccardLoss",
    "JaccardLossFromProbs",
    "KLDivLoss",
    "KTOLoss",
    "L1Loss",
    "LDAMLoss",
    "LabelSmoothingCrossEntropyLoss",
    "LambdaLoss",
    "LiftedStructureLoss",
    "LinearCrossEntropyLoss",
    "LinearDistillationLoss",
    "ListMLELoss",
    "ListNetLoss",
    "LogCoshLoss",
    "LogisticLoss",
    "LogitAdjustedCrossEntropyLoss",
    "LossModule",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "MAPELoss",
    "MCCLoss",
    "MSELoss",
    "MSLELoss",
    "MSSSIMLoss",
    "MarginRankingLoss",
    "MinedContrastiveLoss",
    "MinedTripletLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "MultiSimilarityLoss",
    "NCELoss",
    "NLLLoss",
    "NPairLoss",
    "NegativeSamplingLoss",
    "ORPOLoss",
    "PSNRLoss",
    "PerceptronLoss",
    "PerceptualLoss",
    "PoissonNLLLoss",
    "Poly1CrossEntropyLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "PseudoHuberLoss",
    "QualityFocalLoss",
    "QuantileLoss",
    "RMSELoss",
    "RankNetLoss",
    "RankingSoftmaxLoss",
    "SIoULoss",
    "SMAPELoss",
    "SSDLoss",
    "SSIMLoss",
    "SampledSoftmaxLoss",
    "SeesawLoss",
    "SigLIPLoss",
    "SimPOLoss",
    "SmoothL1Loss",
    "SoftClDiceLoss",
    "SoftMarginLoss",
    "SphereFaceLoss",
    "SquaredHingeLoss",
    "SupConLoss",
    "SymmetricCrossEntropyLoss",
    "TotalVariationLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "TverskyLoss",
    "TverskyLossFromProbs",
    "VarifocalLoss",
    "WelschLoss",
    "WingLoss",
    "ZeroOneLoss",
]
