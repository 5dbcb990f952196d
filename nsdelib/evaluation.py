"""Batched prediction and the clean-accuracy metrics every chapter reports."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """The model's outputs for ``x`` (on the CPU), computed in batches on ``device``."""
    outputs = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


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
