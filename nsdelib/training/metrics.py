"""The clean-accuracy metrics every chapter reports: accuracy, per-class recall, confusion matrix."""

from __future__ import annotations

import torch


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts ``[true class, predicted class]``."""
    flat = y_true.long() * num_classes + y_pred.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_metrics(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> dict[str, object]:
    """Accuracy, per-class accuracy (recall) and confusion matrix, as plain JSON-ready values."""
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    support = confusion.sum(dim=1).clamp(min=1)
    return {
        "accuracy": float((y_true == y_pred).float().mean()),
        "per_class_accuracy": (confusion.diag() / support).tolist(),
        "confusion": confusion.tolist(),
    }
