"""lossatlas: every PyTorch loss in one place, organised by task.

>>> import torch
>>> import lossatlas as la
>>> la.cross_entropy(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
tensor(1.3133)

Functional losses live at the top level (``la.focal_loss``), their ``nn.Module`` twins in
:mod:`lossatlas.nn` (``la.nn.FocalLoss``), and every loss's declaration in the catalog
(``la.catalog()``, ``la.get(name)``, ``la.for_task(task)``). Each family module's ``__all__``
lists its public functionals; they are re-exported here by name, one import per family.
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
from lossatlas._fused import fused, fused_enabled, fused_min_numel, fused_status, set_fused
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
from lossatlas.plot import loss_curve, loss_path, plot_activation, plot_loss, plot_loss_path

# Classification (binary, multi-label, multi-class, imbalance)
from lossatlas.classification.seesaw import (
    eqlv2_loss,
    seesaw_loss,
)
from lossatlas.classification.asymmetric import (
    asymmetric_loss,
    asymmetric_single_label_loss,
)
from lossatlas.classification.cross_entropy import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    label_smoothing_cross_entropy,
    nll_loss,
)
from lossatlas.classification.focal import (
    balanced_binary_cross_entropy,
    binary_focal_loss,
    focal_loss,
    focal_wrapper,
)
from lossatlas.classification.poly import poly1_cross_entropy
from lossatlas.classification.class_balanced import (
    class_balanced_loss,
    class_balanced_weights,
)
from lossatlas.classification.long_tail import (
    adjust_logits,
    balanced_softmax_loss,
    drw_weights,
    ldam_loss,
    logit_adjusted_cross_entropy,
)
from lossatlas.classification.noisy import (
    bi_tempered_logistic_loss,
    binary_bi_tempered_logistic_loss,
    generalized_cross_entropy,
    symmetric_cross_entropy,
)
from lossatlas.classification.margin import (
    exponential_loss,
    hinge_loss,
    logistic_loss,
    perceptron_loss,
    squared_hinge_loss,
    zero_one_loss,
)
from lossatlas.classification.multi_margin import (
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    soft_margin_loss,
)
from lossatlas.classification.margin_softmax import (
    arcface_logits,
    arcface_loss,
    cosface_logits,
    cosface_loss,
    sphereface_logits,
    sphereface_loss,
)

# Regression and distributions
from lossatlas.regression.pointwise import (
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mse_loss,
    pseudo_huber_loss,
    rmse_loss,
    smooth_l1_loss,
)
from lossatlas.regression.landmark import (
    adaptive_wing_loss,
    wing_loss,
)
from lossatlas.regression.robust import (
    cauchy_loss,
    charbonnier_loss,
    general_robust_loss,
    geman_mcclure_loss,
    welsch_loss,
)
from lossatlas.regression.quantile import (
    mape_loss,
    msle_loss,
    quantile_loss,
    smape_loss,
)
from lossatlas.regression.likelihood import (
    gaussian_nll_loss,
    poisson_nll_loss,
)
from lossatlas.distribution.divergence import (
    js_div,
    kl_div,
)

# Ranking, embeddings, metric learning
from lossatlas.ranking.embedding import (
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from lossatlas.ranking.contrastive import (
    contrastive_loss,
    info_nce_loss,
)
from lossatlas.ranking.listwise import (
    approx_ndcg_loss,
    lambda_loss,
    listmle_loss,
    listnet_loss,
    ranking_softmax_loss,
    ranknet_loss,
)
from lossatlas.ranking.mined import mined_triplet_loss
from lossatlas.ranking.proxies import proxy_anchor_loss, proxy_nca_loss
from lossatlas.ranking.siglip import siglip_loss
from lossatlas.ranking.supervised import (
    circle_loss,
    lifted_structure_loss,
    mined_contrastive_loss,
    multi_similarity_loss,
    npair_loss,
    supcon_loss,
)

# Segmentation
from lossatlas.segmentation.dice import (
    binary_dice_loss,
    binary_jaccard_loss,
    dice_loss,
    jaccard_loss,
)
from lossatlas.segmentation.tversky import (
    binary_focal_tversky_loss,
    binary_tversky_loss,
    focal_tversky_loss,
    tversky_loss,
)
from lossatlas.segmentation.from_probs import (
    dice_loss_from_probs,
    focal_tversky_loss_from_probs,
    jaccard_loss_from_probs,
    tversky_loss_from_probs,
)
from lossatlas.segmentation.dsc import (
    binary_dsc_loss,
    dsc_loss,
)
from lossatlas.segmentation.lovasz import (
    lovasz_hinge_loss,
    lovasz_softmax_loss,
)
from lossatlas.segmentation.compound import (
    binary_dice_ce_loss,
    dice_ce_loss,
    dice_focal_loss,
)
from lossatlas.segmentation.boundary import (
    boundary_loss,
    hausdorff_dt_loss,
    signed_distance_map,
)
from lossatlas.segmentation.generalized_dice import (
    binary_generalized_dice_loss,
    generalized_dice_loss,
    generalized_wasserstein_dice_loss,
)
from lossatlas.segmentation.skeleton import (
    dice_cldice_loss,
    soft_cldice_loss,
    soft_skeleton,
)
from lossatlas.segmentation.mcc import binary_mcc_loss, mcc_loss

# Detection
from lossatlas.detection.boxes import (
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    decode_boxes,
    encode_boxes,
    match_priors,
)
from lossatlas.detection.ssd import ssd_loss
from lossatlas.detection.balanced_l1 import balanced_l1_loss
from lossatlas.detection.iou import (
    ciou_loss,
    diou_loss,
    eiou_loss,
    giou_loss,
    iou_loss,
    siou_loss,
)
from lossatlas.detection.ghm import (
    ghmc_loss,
    ghmr_loss,
)
from lossatlas.detection.generalized_focal import (
    distribution_focal_loss,
    quality_focal_loss,
    varifocal_loss,
)

# Large vocabularies, sequences, generative models
from lossatlas.language.distillation import (
    distillation_loss,
    generalized_jsd_loss,
)
from lossatlas.language.preference import (
    dpo_loss,
    kto_loss,
    orpo_loss,
    sequence_log_probs,
    simpo_loss,
)
from lossatlas.language.sampled import (
    nce_loss,
    negative_sampling_loss,
    sampled_softmax_loss,
)
from lossatlas.language.linear_cross_entropy import linear_cross_entropy
from lossatlas.language.fused_heads import (
    linear_distillation_loss,
    linear_sequence_log_probs,
)
from lossatlas.sequence.ctc import ctc_loss
from lossatlas.generative.gan import (
    gan_discriminator_loss,
    gan_generator_loss,
    gradient_penalty,
    r1_penalty,
)
from lossatlas.generative.perceptual import perceptual_loss
from lossatlas.image.pixel import psnr_loss, total_variation_loss
from lossatlas.image.ssim import ms_ssim_loss, ssim_loss

from lossatlas import nn

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "TASKS",
    "CombinedLoss",
    "Example",
    "LossHistory",
    "LossParts",
    "LossSpec",
    "Maxout",
    "Swish",
    "activation",
    "adaptive_wing_loss",
    "adjust_logits",
    "approx_ndcg_loss",
    "arcface_logits",
    "arcface_loss",
    "asymmetric_loss",
    "asymmetric_single_label_loss",
    "balanced_binary_cross_entropy",
    "balanced_l1_loss",
    "balanced_softmax_loss",
    "bi_tempered_logistic_loss",
    "binary_bi_tempered_logistic_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_dice_ce_loss",
    "binary_dice_loss",
    "binary_dsc_loss",
    "binary_focal_loss",
    "binary_focal_tversky_loss",
    "binary_generalized_dice_loss",
    "binary_jaccard_loss",
    "binary_mcc_loss",
    "binary_tversky_loss",
    "boundary_loss",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xyxy_to_cxcywh",
    "catalog",
    "cauchy_loss",
    "charbonnier_loss",
    "ciou_loss",
    "circle_loss",
    "class_balanced_loss",
    "class_balanced_weights",
    "combine",
    "contrastive_loss",
    "cosface_logits",
    "cosface_loss",
    "cosine_embedding_loss",
    "cross_entropy",
    "ctc_loss",
    "decode_boxes",
    "dice_ce_loss",
    "dice_cldice_loss",
    "dice_focal_loss",
    "dice_loss",
    "dice_loss_from_probs",
    "diou_loss",
    "distillation_loss",
    "distribution_focal_loss",
    "dpo_loss",
    "drw_weights",
    "dsc_loss",
    "eiou_loss",
    "encode_boxes",
    "eqlv2_loss",
    "exponential_loss",
    "focal_loss",
    "focal_tversky_loss",
    "focal_tversky_loss_from_probs",
    "focal_wrapper",
    "for_task",
    "fused",
    "fused_enabled",
    "fused_min_numel",
    "fused_status",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "gaussian_nll_loss",
    "geman_mcclure_loss",
    "general_robust_loss",
    "generalized_cross_entropy",
    "generalized_dice_loss",
    "generalized_jsd_loss",
    "generalized_wasserstein_dice_loss",
    "get",
    "ghmc_loss",
    "ghmr_loss",
    "giou_loss",
    "gradient_penalty",
    "hardmax",
    "hausdorff_dt_loss",
    "hinge_embedding_loss",
    "hinge_loss",
    "huber_loss",
    "info_nce_loss",
    "iou_loss",
    "jaccard_loss",
    "jaccard_loss_from_probs",
    "js_div",
    "kl_div",
    "kto_loss",
    "l1_loss",
    "label_smoothing_cross_entropy",
    "lambda_loss",
    "ldam_loss",
    "lifted_structure_loss",
    "linear_cross_entropy",
    "linear_distillation_loss",
    "linear_sequence_log_probs",
    "listmle_loss",
    "listnet_loss",
    "log_cosh_loss",
    "logistic_loss",
    "logit_adjusted_cross_entropy",
    "loss_curve",
    "loss_path",
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    "mape_loss",
    "margin_ranking_loss",
    "match_priors",
    "maxout",
    "mcc_loss",
    "mined_contrastive_loss",
    "mined_triplet_loss",
    "ms_ssim_loss",
    "mse_loss",
    "msle_loss",
    "multi_margin_loss",
    "multi_similarity_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nce_loss",
    "negative_sampling_loss",
    "nll_loss",
    "nn",
    "npair_loss",
    "orpo_loss",
    "perceptron_loss",
    "perceptual_loss",
    "plot_activation",
    "plot_loss",
    "plot_loss_path",
    "poisson_nll_loss",
    "poly1_cross_entropy",
    "proxy_anchor_loss",
    "proxy_nca_loss",
    "pseudo_huber_loss",
    "psnr_loss",
    "quality_focal_loss",
    "quantile_loss",
    "r1_penalty",
    "ranking_softmax_loss",
    "ranknet_loss",
    "reduce_loss",
    "register",
    "rmse_loss",
    "sampled_softmax_loss",
    "seesaw_loss",
    "sequence_log_probs",
    "set_fused",
    "set_value_checks",
    "siglip_loss",
    "signed_distance_map",
    "simpo_loss",
    "siou_loss",
    "smape_loss",
    "smooth_l1_loss",
    "soft_cldice_loss",
    "soft_margin_loss",
    "soft_skeleton",
    "sphereface_logits",
    "sphereface_loss",
    "squared_hinge_loss",
    "ssd_loss",
    "ssim_loss",
    "supcon_loss",
    "swish",
    "symmetric_cross_entropy",
    "total_variation_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "tversky_loss",
    "tversky_loss_from_probs",
    "unregister",
    "value_checks",
    "value_checks_enabled",
    "varifocal_loss",
    "welsch_loss",
    "wing_loss",
    "zero_one_loss",
]
