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

__all__ = ["COMPARE_TASKS", "KIND_PRESETS", "KindPreset", "Task", "get_task"]


#: ``evaluate(model, data, device) -> {metric key: value}``.
Evaluate = Callable[[nn.Module, Dataset, torch.device], dict[str, float]]


@dataclass(frozen=True)
class KindPreset:
    """What every task of a kind shares: how it is judged, and the catalog tag of its losses.

    Attributes:
        metrics: The metrics, the primary one (the verdict's headline) first.
        evaluate: ``evaluate(model, data, device) -> {metric key: value}``.
        tabular: Whether a CSV file of this kind can replace a task's data (``--data``).
        catalog_task: The catalog's task tag of its losses (``None``: the kind's name).
    """

    metrics: tuple[Metric, ...]
    evaluate: Evaluate
    tabular: bool = False
    catalog_task: str | None = None


@dataclass(frozen=True)
class Task:
    """A task of ``compare``: data, model, candidates and training settings.

    Its metrics, evaluation and catalog tag are its kind's (:data:`KIND_PRESETS`).

    Attributes:
        name: Its name (``--task``).
        description: One line on the data and what makes it hard.
        kind: The kind of prediction.
        load: ``load(seed) -> Dataset``; the split (and any subsampling or corruption) is a
            function of the seed alone.
        make_model: ``make_model(data) -> nn.Module``.
        candidates: The candidate losses, most familiar first.
        epochs: Training epochs.
        batch_size: Batch size (metric learning: P classes x K samples).
        lr: AdamW's learning rate (default AdamW's own, 1e-3).
        weight_decay: AdamW's weight decay.
        defaults: The candidate keys compared when ``--losses`` is not given (``None``: all).
    """

    name: str
    description: str
    kind: Kind
    load: Callable[[int], Dataset]
    make_model: Callable[[Dataset], nn.Module]
    candidates: tuple[Candidate, ...]
    epochs: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 1e-4
    defaults: tuple[str, ...] | None = None

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """The kind's metrics, the primary one (the verdict's headline) first."""
        return KIND_PRESETS[self.kind].metrics

    @property
    def evaluate(self) -> Evaluate:
        """The kind's ``evaluate(model, data, device) -> {metric key: value}``."""
        return KIND_PRESETS[self.kind].evaluate

    @property
    def tabular(self) -> bool:
        """Whether a CSV file of this kind can replace its data (``--data``)."""
        return KIND_PRESETS[self.kind].tabular

    @property
    def catalog_task(self) -> str:
        """The catalog's task tag of its losses."""
        return KIND_PRESETS[self.kind].catalog_task or self.kind

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


#: A chance level shared by several metrics: ``(chance(data), what it is)``.
_RANDOM_GUESS = (lab_metrics.one_over_classes, "a random guess (1 / classes)")
_ALL_BACKGROUND = (lab_metrics.zero, "predicting background everywhere")
_RANDOM_ORDER = "a random order of each list"

#: The metrics, evaluation and catalog tag of each kind of task.
KIND_PRESETS: dict[Kind, KindPreset] = {
    "regression": KindPreset(
        metrics=(
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
        ),
        evaluate=lab_metrics.evaluate_regression,
        tabular=True,
    ),
    "binary": KindPreset(
        metrics=(
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
                "roc_auc",
                "ROC-AUC",
                True,
                "area under the ROC curve",
                lab_metrics.half,
                "a random score",
            ),
        ),
        evaluate=lab_metrics.evaluate_binary,
        tabular=True,
    ),
    "multiclass": KindPreset(
        metrics=(
            Metric(
                "balanced_accuracy",
                "bal. accuracy",
                True,
                "mean recall over classes",
                *_RANDOM_GUESS,
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
                *_RANDOM_GUESS,
            ),
        ),
        evaluate=lab_metrics.evaluate_multiclass,
        tabular=True,
    ),
    "segmentation": KindPreset(
        metrics=(
            Metric(
                "mean_iou",
                "mean IoU (fg)",
                True,
                "IoU per foreground class, averaged",
                *_ALL_BACKGROUND,
            ),
            Metric(
                "dice", "Dice (fg)", True, "Dice per foreground class, averaged", *_ALL_BACKGROUND
            ),
        ),
        evaluate=lab_metrics.evaluate_segmentation,
    ),
    "metric": KindPreset(
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
        catalog_task="metric-learning",
    ),
    "ranking": KindPreset(
        metrics=(
            Metric(
                "ndcg_at_10",
                "NDCG@10",
                True,
                "NDCG@10 (gains 2^grade - 1) on held-out queries",
                lab_ranking.random_ndcg_at_10,
                _RANDOM_ORDER,
            ),
            Metric(
                "mrr",
                "MRR",
                True,
                "reciprocal rank of the first item graded >= 2",
                lab_ranking.random_mrr,
                _RANDOM_ORDER,
            ),
        ),
        evaluate=lab_ranking.evaluate_ranking,
    ),
}

COMPARE_TASKS: dict[str, Task] = {}


def _add(task: Task) -> None:
    COMPARE_TASKS[task.name] = task


_add(
    Task(
        name="regression-outliers",
        description="regression with 10 % gross outliers in the training targets, clean test set",
        kind="regression",
        load=lab_data.outlier_diabetes,
        make_model=partial(models.mlp, hidden=16),
        candidates=(
            Candidate("mse", "mse_loss"),
            Candidate("mae", "l1_loss"),
            Candidate("huber", "huber_loss"),
            Candidate("smooth_l1", "smooth_l1_loss"),
            Candidate("log_cosh", "log_cosh_loss"),
            Candidate("pseudo_huber", "pseudo_huber_loss"),
            Candidate("quantile_0.5", "quantile_loss", quantile_median, "quantile 0.5"),
            # Redescending (Barron's alpha = 0 and -inf); geman_mcclure (alpha = -2) lies
            # between them, and one more candidate would need 9 seeds for a Holm verdict.
            Candidate("cauchy", "cauchy_loss"),
            Candidate("welsch", "welsch_loss"),
        ),
        epochs=20,
        batch_size=32,
        lr=3e-3,
    )
)

_add(
    Task(
        name="binary-imbalanced",
        description="binary classification with ~2 % positives",
        kind="binary",
        load=lab_data.binary_imbalanced_digits,
        make_model=models.mlp,
        candidates=(
            Candidate("bce", "binary_cross_entropy_with_logits"),
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
            Candidate("binary_focal", "binary_focal_loss"),
            Candidate(
                "class_balanced_sigmoid",
                "class_balanced_loss",
                class_balanced_sigmoid,
                "loss_type='sigmoid', samples_per_class from train",
            ),
            Candidate("ghmc", "ghmc_loss"),
            Candidate("binary_dsc", "binary_dsc_loss"),
        ),
        epochs=30,
        batch_size=64,
    )
)

_add(
    Task(
        name="multiclass-longtail",
        description="multi-class classification with a long-tailed training set, balanced test",
        kind="multiclass",
        load=lab_data.longtail_digits,
        make_model=partial(models.mlp, per_class=True),
        candidates=(
            Candidate("ce", "cross_entropy"),
            Candidate(
                "label_smoothing",
                "label_smoothing_cross_entropy",
                with_options(epsilon=0.1),
                "epsilon 0.1",
            ),
            Candidate("focal", "focal_loss"),
            Candidate("poly1", "poly1_cross_entropy"),
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
        epochs=60,
        batch_size=32,
    )
)

_NO_BACKGROUND = "include_background=False"

_add(
    Task(
        name="segmentation",
        description="semantic segmentation of small shapes on noise (3 classes)",
        kind="segmentation",
        load=lab_data.synthetic_segmentation,
        make_model=models.seg_net,
        candidates=(
            Candidate("ce", "cross_entropy"),
            # Overlap losses score foreground classes only: with the background's (near
            # perfect) Dice term included, softmax Dice, Tversky and focal Tversky collapse to
            # all-background on this data (measured: IoU 0.000 for every seed).
            Candidate("dice", "dice_loss", with_options(include_background=False), _NO_BACKGROUND),
            Candidate("dice_ce", "dice_ce_loss"),
            Candidate("dice_focal", "dice_focal_loss"),
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
            Candidate("lovasz", "lovasz_softmax_loss"),
        ),
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
        epochs=30,
        batch_size=PK_CLASSES * PK_SAMPLES,
    )
)

#: A list loss's adapter: the padding of the targets becomes its mask (library defaults).
_LISTWISE = lab_ranking.listwise()

_add(
    Task(
        name="ranking",
        description="learning to rank generated queries with graded relevance (NDCG@10, MRR)",
        kind="ranking",
        load=lab_ranking.synthetic_ranking,
        make_model=lab_ranking.item_scorer,
        candidates=(
            Candidate("softmax", "ranking_softmax_loss", _LISTWISE),
            Candidate("ranknet", "ranknet_loss", _LISTWISE),
            Candidate("listnet", "listnet_loss", _LISTWISE),
            Candidate("lambda_ndcg2", "lambda_loss", _LISTWISE, "NDCG-Loss2"),
            Candidate(
                "lambdarank",
                "lambda_loss",
                lab_ranking.listwise(weighting="lambdarank"),
                "weighting='lambdarank'",
            ),
            Candidate("listmle", "listmle_loss", _LISTWISE),
            Candidate("approx_ndcg", "approx_ndcg_loss", _LISTWISE),
        ),
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
