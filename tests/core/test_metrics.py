import numpy as np
import pytest

from tlstudio.core.report.metrics import classification_metrics, confusion_matrix


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_per_class_metrics_match_hand_computation():
    labels = [0, 0, 0, 0, 1, 1]
    preds = [0, 0, 0, 1, 1, 0]
    m = classification_metrics(labels, preds, ["cat", "dog"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["cat"] == pytest.approx({"precision": 3 / 4, "recall": 3 / 4, "f1": 3 / 4, "support": 4})
    assert m["per_class"]["dog"] == pytest.approx({"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2})
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert m["confusion_matrix"] == [[3, 1], [1, 1]]


def test_balanced_accuracy_ignores_absent_classes_and_never_divides_by_zero():
    m = classification_metrics([0, 0, 1], [0, 0, 0], ["a", "b", "never seen"])
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["per_class"]["never seen"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["b"]["precision"] == 0.0
