"""``python -m nsdelib`` runs the book's command line."""

import sys

from .cli import main

sys.exit(main())
