"""nsdelib: the library behind the book reproducing Brogan et al., arXiv 2409.01532. Stages import only earlier
ones (the README's layout section); ``nsdelib.setup`` is the first call of every chapter."""

from __future__ import annotations

import warnings
from typing import Any

__version__ = "0.2.0"

# timm imports tqdm.auto through huggingface_hub; without ipywidgets that warns in every notebook.
warnings.filterwarnings("ignore", message="IProgress not found")


def __getattr__(name: str) -> Any:
    """``nsdelib.setup`` without importing every stage on ``import nsdelib``."""
    if name == "setup":
        from .book.context import setup

        return setup
    raise AttributeError(f"module 'nsdelib' has no attribute {name!r}")
