"""``python -m research`` is the ``starttls-survey`` command."""

import sys

from research.cli import main

sys.exit(main())
