"""nsdelib: the compact library behind the book reproducing Brogan et al., arXiv 2409.01532."""

__version__ = "0.1.0"

import warnings  # noqa: E402

# timm imports tqdm.auto through huggingface_hub; without ipywidgets that warns in every notebook.
warnings.filterwarnings("ignore", message="IProgress not found")

from .artifacts import LIBRARY_FINGERPRINT, ArtifactStore  # noqa: E402
from .context import Context, setup  # noqa: E402
from .errors import ArtifactCorrupt, ArtifactError, ArtifactMissing, ArtifactStale, ConfigError  # noqa: E402
from .profiles import PROFILE_NAMES, Profile, get_profile  # noqa: E402

__all__ = [
    "LIBRARY_FINGERPRINT",
    "PROFILE_NAMES",
    "ArtifactCorrupt",
    "ArtifactError",
    "ArtifactMissing",
    "ArtifactStale",
    "ArtifactStore",
    "ConfigError",
    "Context",
    "Profile",
    "get_profile",
    "setup",
]
