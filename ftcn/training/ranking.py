"""Rank metrics of video scores (ROC AUC, EER, average precision) in plain Python, no numpy.

They live apart from :mod:`ftcn.training.metrics` because the API computes a batch's detection report on request,
and the API image carries no numpy (``Dockerfile.api``). A few thousand videos sort in milliseconds; the numpy
helpers of training build on :func:`roc_points` so that there is one definition of the curve.
"""

from __future__ import annotations

from collections.abc import Sequence


def roc_points(labels: Sequence[float], scores: Sequence[float]) -> tuple[list[float], list[float], list[float]]:
    """False and true positive rates at every distinct threshold (descending), starting at (0, 0), and those
    thresholds (the first is +inf). Labels are 1 for fake, 0 for real."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # stable, as numpy's kind="stable"
    fpr, tpr, thresholds = [0.0], [0.0], [float("inf")]
    positives = sum(float(label) for label in labels)
    negatives = len(labels) - positives
    true_positives = 0.0
    for rank, index in enumerate(order):
        true_positives += float(labels[index])
        is_last_of_tie = rank + 1 == len(order) or float(scores[order[rank + 1]]) != float(scores[index])
        if is_last_of_tie:
            false_positives = rank + 1 - true_positives
            tpr.append(true_positives / positives if positives else 0.0)
            fpr.append(false_positives / negatives if negatives else 0.0)
            thresholds.append(float(scores[index]))
    return fpr, tpr, thresholds


def _one_class(labels: Sequence[float]) -> bool:
    return len({float(label) for label in labels}) < 2


def roc_auc(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    """Probability that a random fake scores above a random real (ties count half); None with one class."""
    if _one_class(labels):
        return None
    fpr, tpr, _ = roc_points(labels, scores)
    return float(sum((fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2 for i in range(len(fpr) - 1)))


def equal_error_rate(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    """The error where missed fakes and false alarms are (nearest to) equal; None with one class."""
    if _one_class(labels):
        return None
    fpr, tpr, _ = roc_points(labels, scores)
    gaps = [abs((1 - t) - f) for f, t in zip(fpr, tpr)]
    i = gaps.index(min(gaps))
    return float((fpr[i] + 1 - tpr[i]) / 2)


def average_precision(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    """Area under the precision-recall curve as a step function (precision at each distinct threshold, weighted
    by the recall gained there): what scikit-learn's average_precision_score computes. None without fakes."""
    positives = sum(float(label) for label in labels)
    if not labels or positives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    total, recall_before, true_positives = 0.0, 0.0, 0.0
    for rank, index in enumerate(order):
        true_positives += float(labels[index])
        if rank + 1 == len(order) or float(scores[order[rank + 1]]) != float(scores[index]):
            recall = true_positives / positives
            total += (recall - recall_before) * true_positives / (rank + 1)
            recall_before = recall
    return float(total)
