"""The tasks of ``lossatlas compare``: :data:`COMPARE_TASKS`, the registry ``--task`` names.

A :class:`Task` bundles an embedded data set, a small model (:mod:`~lossatlas.lab.models`), the
candidate losses with their adapters (:mod:`~lossatlas.lab.adapters`) and the metrics it is
judged by (:mod:`~lossatlas.lab.metrics`). Candidates whose loss is not in the catalog are
skipped with a note, so the task lists grow with the catalog.

A task lists its candidates **from the most familiar to the least** (the loss a newcomer would
try first comes first): when the statistics cannot separate several candidates, the report
recommends the first of them in this order.

Not to be confused with the catalog's ``lossatlas._catalog.TASKS`` (the task *tags* a loss
declares, such as ``"binary"``); a compare task names its catalog tag in ``catalog_task``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from lossatlas.lab import data as lab_data
from lossatlas.lab import metrics as lab_metrics
from lossatlas.lab import models
from lossatlas.lab import ranking as lab_ranking
from lossatlas.lab.adapters import (
    Candidate,
    Kind,
    balanced_bce,
    bce_pos_weight,
    class_balanced,
    class_balanced_sigmoid,
    contrastive_all_pairs,
    info_nce_pairs,
    margin_softmax_head,
    plain,
    quantile_median,
    with_class_counts,
    with_options,
)
from lossatlas.lab.batching import PK_CLASSES, PK_SAMPLES, pk_batches, shuffled_batches
from lossatlas.lab.data import Dataset
from lossatlas.lab.metrics import Metric

__all__ = ["COMPARE_TASKS", "Task", "get_task"]


@dataclass(frozen=True)
class Task:
    """A task of ``compare``: data, model, candidates, metrics and training settings.

    Attributes:
        name: Its name (``--task``).
        description: One line on the data and what makes it hard.
        kind: The kind of prediction.
        catalog_task: The catalog's task tag of its losses.
        load: ``load(seed) -> Dataset``; the split (and any subsampling or corruption) is a
            function of the seed alone.
        make_model: ``make_model(data) -> nn.Module``.
        candidates: The candidate losses, most familiar first.
        metrics: The metrics, the primary one (the verdict's headline) first.
        evaluate: ``evaluate(model, data, device) -> {metric key: value}``.
        epochs: Training epochs.
        batch_size: Batch size (metric learning: P classes x K samples).
        lr: AdamW's learning rate.
        weight_decay: AdamW's weight decay.
        tabular: Whether a CSV file of this kind can replace its data (``--data``).
        defaults: The candidate keys compared when ``--losses`` is not given (``None``: all).
    """

    name: str
    description: str
    kind: Kind
    catalog_task: str
    load: Callable[[int], Dataset]
    make_model: Callable[[Dataset], nn.Module]
    candidates: tuple[Candidate, ...]
    metrics: tuple[Metric, ...]
    evaluate: Callable[[nn.Module, Dataset, torch.device], dict[str, float]]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    tabular: bool = False
    defaults: tuple[str, ...] | None = None

    @property
    def primary(self) -> Metric:
        """The metric the rows are sorted by and the headline verdict is about (the first)."""
        return self.metrics[0]

    def batches(
        self, data: Dataset, generator: torch.Generator, device: torch.device
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of training batches ``(inputs, targets)`` on ``device``."""
        if self.kind == "metric":
            return pk_batches(data, generator, device)
        return shuffled_batches(
            data,
            self.batch_size,
            generator,
            device,
            standardise_target=self.kind == "regression",
        )


COMPARE_TASKS: dict[str, Task] = {}


def _add(task: Task) -> None:
    COMPARE_TASKS[task.name] = task


REGRESSION_METRICS = (
    Metric(
        "mae",
        "test MAE",
        False,
        "mean absolute error, original units, clean test",
        lab_metrics.median_mae,
        "predicting the training median",
    ),
    Metric(
        "rmse",
        "test RMSE",
        False,
        "root mean squared error, original units",
        lab_metrics.mean_rmse,
        "predicting the training mean",
    ),
)

BINARY_METRICS = (
    Metric(
        "average_precision",
        "AP",
        True,
        "average precision (area under the PR curve)",
        lab_metrics.positive_share,
        "a random score (AP = the positives' share)",
    ),
    Metric(
        "f1",
        "F1 @ val. thr.",
        True,
        "F1 at the threshold best on validation",
        lab_metrics.all_positive_f1,
        "calling every row positive",
    ),
    Metric(
        "roc_auc", "ROC-AUC", True, "area under the ROC curve", lab_metrics.half, "a random score"
    ),
)

MULTICLASS_METRICS = (
    Metric(
        "balanced_accuracy",
        "bal. accuracy",
        True,
        "mean recall over classes",
        lab_metrics.one_over_classes,
        "a random guess (1 / classes)",
    ),
    Metric("macro_f1", "macro-F1", True, "F1 averaged over classes"),
    Metric(
        "accuracy",
        "accuracy",
        True,
        "fraction correct",
        lab_metrics.majority_share,
        "always guessing the most frequent training class",
    ),
    Metric(
        "rare_recall",
        "rare recall",
        True,
        "mean recall of the 3 rarest training classes",
        lab_metrics.one_over_classes,
        "a random guess (1 / classes)",
    ),
)

_add(
    Task(
        name="regression-outliers",
        description="regression with 10 % gross outliers in the training targets, clean test set",
        kind="regression",
        catalog_task="regression",
        load=lab_data.outlier_diabetes,
        make_model=partial(models.mlp, hidden=16),
        candidates=(
            Candidate("mse", "mse_loss", plain),
            Candidate("mae", "l1_loss", plain),
            Candidate("huber", "huber_loss", plain),
            Candidate("smooth_l1", "smooth_l1_loss", plain),
            Candidate("log_cosh", "log_cosh_loss", plain),
            Candidate("pseudo_huber", "pseudo_huber_loss", plain),
            Candidate("quantile_0.5", "quantile_loss", quantile_median, "quantile 0.5"),
            # Redescending (Barron's alpha = 0 and -inf); geman_mcclure (alpha = -2) lies
            # between them, and one more candidate would need 9 seeds for a Holm verdict.
            Candidate("cauchy", "cauchy_loss", plain),
            Candidate("welsch", "welsch_loss", plain),
        ),
        metrics=REGRESSION_METRICS,
        evaluate=lab_metrics.evaluate_regression,
        epochs=20,
        batch_size=32,
        lr=3e-3,
        tabular=True,
    )
)

_add(
    Task(
        name="binary-imbalanced",
        description="binary classification with ~2 % positives",
        kind="binary",
        catalog_task="binary",
        load=lab_data.binary_imbalanced_digits,
        make_model=models.mlp,
        candidates=(
            Candidate("bce", "binary_cross_entropy_with_logits", plain),
            Candidate(
                "bce_pos_weight",
                "binary_cross_entropy_with_logits",
                bce_pos_weight,
                "pos_weight = #neg / #pos (train)",
            ),
            Candidate(
                "balanced_bce",
                "balanced_binary_cross_entropy",
                balanced_bce,
                "alpha = share of negatives (train)",
            ),
            Candidate("binary_focal", "binary_focal_loss", plain),
            Candidate(
                "class_balanced_sigmoid",
                "class_balanced_loss",
                class_balanced_sigmoid,
                "loss_type='sigmoid', samples_per_class from train",
            ),
            Candidate("ghmc", "ghmc_loss", plain),
            Candidate("binary_dsc", "binary_dsc_loss", plain),
        ),
        metrics=BINARY_METRICS,
        evaluate=lab_metrics.evaluate_binary,
        epochs=30,
        batch_size=64,
        lr=1e-3,
        tabular=True,
    )
)

_add(
    Task(
        name="multiclass-longtail",
        description="multi-class classification with a long-tailed training set, balanced test",
        kind="multiclass",
        catalog_task="multiclass",
        load=lab_data.longtail_digits,
        make_model=partial(models.mlp, per_class=True),
        candidates=(
            Candidate("ce", "cross_entropy", plain),
            Candidate(
                "label_smoothing",
                "label_smoothing_cross_entropy",
                with_options(epsilon=0.1),
                "epsilon 0.1",
            ),
            Candidate("focal", "focal_loss", plain),
            Candidate("poly1", "poly1_cross_entropy", plain),
            Candidate(
                "class_balanced_softmax",
                "class_balanced_loss",
                class_balanced("softmax"),
                "loss_type='softmax', samples_per_class from train",
            ),
            Candidate(
                "class_balanced_focal",
                "class_balanced_loss",
                class_balanced("focal"),
                "loss_type='focal', samples_per_class from train",
            ),
            Candidate(
                "logit_adjusted",
                "logit_adjusted_cross_entropy",
                with_class_counts,
                "tau 1, samples_per_class from train",
            ),
            Candidate(
                "balanced_softmax",
                "balanced_softmax_loss",
                with_class_counts,
                "samples_per_class from train",
            ),
        ),
        metrics=MULTICLASS_METRICS,
        evaluate=lab_metrics.evaluate_multiclass,
        epochs=60,
        batch_size=32,
        lr=1e-3,
        tabular=True,
    )
)

_NO_BACKGROUND = "include_background=False"

_add(
    Task(
        name="segmentation",
        description="semantic segmentation of small shapes on noise (3 classes)",
        kind="segmentation",
        catalog_task="segmentation",
        load=lab_data.synthetic_segmentation,
        make_model=models.seg_net,
        candidates=(
            Candidate("ce", "cross_entropy", plain),
            # Overlap losses score foreground classes only: with the background's (near
            # perfect) Dice term included, softmax Dice, Tversky and focal Tversky collapse to
            # all-background on this data (measured: IoU 0.000 for every seed).
            Candidate("dice", "dice_loss", with_options(include_background=False), _NO_BACKGROUND),
            Candidate("dice_ce", "dice_ce_loss", plain),
            Candidate("dice_focal", "dice_focal_loss", plain),
            Candidate(
                "tversky",
                "tversky_loss",
                with_options(alpha=0.3, beta=0.7, include_background=False),
                "alpha 0.3 (FP), beta 0.7 (FN), " + _NO_BACKGROUND,
            ),
            Candidate(
                "focal_tversky",
                "focal_tversky_loss",
                with_options(include_background=False),
                _NO_BACKGROUND,
            ),
            Candidate("lovasz", "lovasz_softmax_loss", plain),
        ),
        metrics=(
            Metric(
                "mean_iou",
                "mean IoU (fg)",
                True,
                "IoU per foreground class, averaged",
                lab_metrics.zero,
                "predicting background everywhere",
            ),
            Metric(
                "dice",
                "Dice (fg)",
                True,
                "Dice per foreground class, averaged",
                lab_metrics.zero,
                "predicting background everywhere",
            ),
        ),
        evaluate=lab_metrics.evaluate_segmentation,
        epochs=20,
        batch_size=16,
        lr=3e-3,
    )
)

_add(
    Task(
        name="metric-learning",
        description="embeddings of digits, judged by nearest-neighbour retrieval",
        kind="metric",
        catalog_task="metric-learning",
        load=lab_data.metric_digits,
        make_model=models.embedding_net,
        candidates=(
            Candidate(
                "triplet",
                "mined_triplet_loss",
                with_options(margin=0.2, mining="batch_hard"),
                "batch-hard mining, margin 0.2",
            ),
            Candidate(
                "contrastive", "contrastive_loss", contrastive_all_pairs, "all pairs of the batch"
            ),
            Candidate(
                "info_nce",
                "info_nce_loss",
                info_nce_pairs,
                "same-class (query, key) pairs, in-batch negatives",
            ),
            Candidate(
                "supcon",
                "supcon_loss",
                plain,
                "every same-class pair of the batch, temperature 0.07",
            ),
            Candidate("arcface", "arcface_loss", margin_softmax_head, "class centres trained"),
        ),
        metrics=(
            Metric(
                "recall_at_1",
                "recall@1",
                True,
                "held-out samples whose nearest neighbour shares the class",
                lab_metrics.random_neighbour,
                "a random neighbour",
            ),
        ),
        evaluate=lab_metrics.evaluate_metric,
        epochs=30,
        batch_size=PK_CLASSES * PK_SAMPLES,
        lr=1e-3,
    )
)

_add(
    Task(
        name="ranking",
        description="learning to rank generated queries with graded relevance (NDCG@10, MRR)",
        kind="ranking",
        catalog_task="ranking",
        load=lab_ranking.synthetic_ranking,
        make_model=lab_ranking.item_scorer,
        candidates=(
            Candidate("softmax", "ranking_softmax_loss", lab_ranking.listwise()),
            Candidate("ranknet", "ranknet_loss", lab_ranking.listwise()),
            Candidate("listnet", "listnet_loss", lab_ranking.listwise()),
            Candidate("lambda_ndcg2", "lambda_loss", lab_ranking.listwise(), "NDCG-Loss2"),
            Candidate(
                "lambdarank",
                "lambda_loss",
                lab_ranking.listwise(weighting="lambdarank"),
                "weighting='lambdarank'",
            ),
            Candidate("listmle", "listmle_loss", lab_ranking.listwise()),
            Candidate("approx_ndcg", "approx_ndcg_loss", lab_ranking.listwise()),
        ),
        metrics=(
            Metric(
                "ndcg_at_10",
                "NDCG@10",
                True,
                "NDCG@10 (gains 2^grade - 1) on held-out queries",
                lab_ranking.random_ndcg_at_10,
                "a random order of each list",
            ),
            Metric(
                "mrr",
                "MRR",
                True,
                "reciprocal rank of the first item graded >= 2",
                lab_ranking.random_mrr,
                "a random order of each list",
            ),
        ),
        evaluate=lab_ranking.evaluate_ranking,
        epochs=30,
        batch_size=16,
        lr=3e-3,
    )
)


def get_task(name: str) -> Task:
    """The compare task called ``name`` (``KeyError`` with the list otherwise)."""
    try:
        return COMPARE_TASKS[name]
    except KeyError:
        raise KeyError(f"no task named {name!r}; tasks: {', '.join(COMPARE_TASKS)}") from None
