"""``python -m mtkit.cli`` runs the ``mtkit`` console script."""
import sys

from mtkit.cli import main

sys.exit(main())
