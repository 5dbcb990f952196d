"""Clean-accuracy metrics against hand-computed answers and scikit-learn's independent implementation."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, recall_score
from sklearn.metrics import confusion_matrix as sklearn_confusion

from nsdelib.training.trainer import classification_metrics


def labels(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def test_known_case_where_recall_and_precision_differ() -> None:
    # class 0: 1 of 3 found (recall 1/3) but never wrongly predicted (precision 1); class 2 the reverse
    y_true, y_pred = labels([0, 0, 0, 1, 1, 2]), labels([0, 1, 1, 1, 2, 2])
    metrics = classification_metrics(y_true, y_pred, num_classes=3)
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["per_class_accuracy"] == pytest.approx([1 / 3, 1 / 2, 1.0])
    assert metrics["confusion"] == [[1, 2, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["per_class_accuracy"] == pytest.approx(list(recall_score(y_true, y_pred, average=None)))
    json.dumps(metrics)  # plain JSON-ready values, as the artifact store and the book need


def test_confusion_rows_are_true_classes_and_columns_predictions() -> None:
    confusion = classification_metrics(labels([2, 2, 0]), labels([1, 1, 0]), num_classes=3)["confusion"]
    assert confusion == [[1, 0, 0], [0, 0, 0], [0, 2, 0]]


def test_class_without_samples_has_recall_zero_and_an_empty_row() -> None:
    metrics = classification_metrics(labels([0, 0, 2]), labels([0, 0, 1]), num_classes=4)
    assert metrics["per_class_accuracy"] == [1.0, 0.0, 0.0, 0.0]
    assert metrics["confusion"][1] == [0, 0, 0, 0] and metrics["confusion"][3] == [0, 0, 0, 0]


@settings(max_examples=40)
@given(
    num_classes=st.integers(min_value=2, max_value=6),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=60),
)
def test_metrics_agree_with_scikit_learn(num_classes: int, pairs: list[tuple[int, int]]) -> None:
    y_true = labels([t % num_classes for t, _ in pairs])
    y_pred = labels([p % num_classes for _, p in pairs])
    classes = list(range(num_classes))
    metrics = classification_metrics(y_true, y_pred, num_classes)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    expected_recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    assert metrics["per_class_accuracy"] == pytest.approx(list(expected_recall))
    assert metrics["confusion"] == sklearn_confusion(y_true, y_pred, labels=classes).tolist()
