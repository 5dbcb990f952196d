"""nsdelib: the compact library behind the book reproducing Brogan et al., arXiv 2409.01532.

The sub-packages follow the data flow, each importing only the ones before it:
``common`` (configs, errors, seeds, the artifact store) → ``data`` (signals, wiring, spectrograms,
data set) → ``models`` (ConvNeXt, the NSDE, its noise) → ``training`` → ``evaluation`` (input noise,
attacks, attributions, ABC) → ``report`` (statistics, claims and verdicts, figures) → ``book``
(profiles, context, provenance, runner, CLI). ``nsdelib.setup`` is the first call of every chapter.
"""

from __future__ import annotations

import warnings
from typing import Any

__version__ = "0.2.0"

# timm imports tqdm.auto through huggingface_hub; without ipywidgets that warns in every notebook.
warnings.filterwarnings("ignore", message="IProgress not found")


def __getattr__(name: str) -> Any:
    """``nsdelib.setup`` without importing the book machinery (and every stage) on ``import nsdelib``."""
    if name == "setup":
        from .book.context import setup

        return setup
    raise AttributeError(f"module 'nsdelib' has no attribute {name!r}")
