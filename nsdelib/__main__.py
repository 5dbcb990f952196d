"""``python -m nsdelib`` runs the book's command line."""

import sys

from .book.cli import main

sys.exit(main())
