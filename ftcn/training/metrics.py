"""Detection metrics on probabilities (never on logits): ROC AUC, EER, accuracy, confusion, threshold choice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ftcn.training.ranking import average_precision, equal_error_rate, roc_auc, roc_points

__all__ = ["average_precision", "by_video", "choose_band", "choose_threshold", "confusion", "equal_error_rate",
           "roc_auc", "roc_curve", "summarise"]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold (descending), starting at (0, 0), as arrays."""
    fpr, tpr, thresholds = roc_points(np.asarray(labels, dtype=np.float64).tolist(),
                                      np.asarray(scores, dtype=np.float64).tolist())
    return np.asarray(fpr), np.asarray(tpr), np.asarray(thresholds)


def confusion(labels: Sequence[float], scores: Sequence[float], threshold: float) -> dict[str, int]:
    labels_arr = np.asarray(labels) > 0.5
    predicted = np.asarray(scores) >= threshold
    return {
        "true_fake": int((labels_arr & predicted).sum()),
        "false_fake": int((~labels_arr & predicted).sum()),
        "true_real": int((~labels_arr & ~predicted).sum()),
        "false_real": int((labels_arr & ~predicted).sum()),
    }


def choose_threshold(labels: Sequence[float], scores: Sequence[float]) -> float:
    """Youden's J: the threshold maximising TPR - FPR on validation videos, placed half-way between the two
    neighbouring scores so that it generalises; 0.5 when one class is missing."""
    labels_arr, scores_arr = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if labels_arr.min(initial=1) == labels_arr.max(initial=0):
        return 0.5
    fpr, tpr, thresholds = roc_curve(labels_arr, scores_arr)
    best = int(np.argmax(tpr - fpr))
    upper = thresholds[best]
    below = scores_arr[scores_arr < upper]
    lower = below.max() if below.size else upper
    threshold = float((upper + lower) / 2) if np.isfinite(upper) else float(lower)
    return float(np.clip(threshold, 1e-4, 1 - 1e-4))


#: The inconclusive band (:func:`choose_band`): the accuracy a verdict outside it should reach on validation
#: videos, and the largest share of them it may leave undecided to get there.
BAND_TARGET_ACCURACY = 0.95
BAND_MAX_SHARE = 0.2


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def choose_band(labels: Sequence[float], scores: Sequence[float], threshold: float,
                target_accuracy: float = BAND_TARGET_ACCURACY, max_share: float = BAND_MAX_SHARE) -> dict[str, Any]:
    """The scores around ``threshold`` where a verdict is a coin toss, from validation videos.

    Videos are taken in order of their distance to the threshold (in log-odds, so the band is symmetric in the
    model's own units); the band is the narrowest that holds the nearest k videos such that the verdicts on the
    others reach ``target_accuracy``, with k at most ``max_share`` of the videos. If no such k exists, the k up to
    that share with the best accuracy outside (fewest on ties). Its edges lie half-way between the last video in
    it and the first outside. Returns ``low``/``high`` (equal to the threshold: no band) and what it achieved.
    """
    labels_arr, scores_arr = np.asarray(labels, dtype=np.float64) > 0.5, np.asarray(scores, dtype=np.float64)
    count = len(scores_arr)
    described = {"target_accuracy": target_accuracy, "max_share": max_share, "videos": count}
    if count == 0:
        return {"low": threshold, "high": threshold, **described, "share_inside": 0.0, "accuracy_outside": None}
    distance = np.abs(_logit(scores_arr) - _logit(threshold))
    order = np.argsort(distance, kind="stable")
    correct = ((scores_arr >= threshold) == labels_arr)[order]
    limit = int(np.floor(max_share * count))
    accuracies = [float(correct[k:].mean()) if k < count else 1.0 for k in range(limit + 1)]
    reaching = [k for k, accuracy in enumerate(accuracies) if accuracy >= target_accuracy]
    k = reaching[0] if reaching else int(np.argmax(accuracies))
    if k == 0:
        width = 0.0
    else:
        inside, outside = distance[order[k - 1]], distance[order[k]] if k < count else distance[order[k - 1]]
        width = float((inside + outside) / 2)
    centre = float(_logit(threshold))
    low, high = (float(1 / (1 + np.exp(-(centre + sign * width)))) for sign in (-1, 1))
    return {"low": min(low, threshold), "high": max(high, threshold), **described, "share_inside": k / count,
            "accuracy_outside": accuracies[k]}


def by_video(video_ids: Sequence[str], labels: Sequence[float], scores: Sequence[float]) -> tuple[list, list, list]:
    """Video-level labels and scores: a video's score is the mean over its clips (as prediction does per track)."""
    grouped: dict[str, list[float]] = defaultdict(list)
    label_of: dict[str, float] = {}
    for video, label, score in zip(video_ids, labels, scores):
        grouped[video].append(float(score))
        label_of[video] = float(label)
    videos = sorted(grouped)
    return videos, [label_of[v] for v in videos], [float(np.mean(grouped[v])) for v in videos]


def summarise(video_ids: Sequence[str], labels: Sequence[float], scores: Sequence[float],
              threshold: float) -> dict[str, Any]:
    """Clip- and video-level AUC, EER, accuracy and confusion at ``threshold``."""
    _, video_labels, video_scores = by_video(video_ids, labels, scores)
    result: dict[str, Any] = {}
    for level, (lab, sco) in {"clip": (labels, scores), "video": (video_labels, video_scores)}.items():
        matrix = confusion(lab, sco, threshold)
        total = sum(matrix.values())
        result[level] = {
            "count": total,
            "auc": roc_auc(lab, sco),
            "eer": equal_error_rate(lab, sco),
            "accuracy": (matrix["true_fake"] + matrix["true_real"]) / total if total else None,
            "confusion": matrix,
        }
    return result
