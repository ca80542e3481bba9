"""Classification metrics from labels and predictions: plain numpy, no framework."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are the true class, columns the predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def accuracy_scores(labels, preds) -> tuple[float, float]:
    """(accuracy, balanced accuracy): the two figures every choice and every report gives."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if labels.size == 0:
        return 0.0, 0.0
    correct = labels == preds
    recalls = [correct[labels == c].mean() for c in np.unique(labels)]
    return float(correct.mean()), float(np.mean(recalls))


def classification_metrics(labels, preds, classes: list[str]) -> dict:
    """accuracy, balanced accuracy (mean recall over classes present), per-class P/R/F1/support, confusion matrix."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    cm = confusion_matrix(labels, preds, len(classes))
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    accuracy, balanced = accuracy_scores(labels, preds)
    return {
        "classes": list(classes),
        "n": int(labels.size),
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }

