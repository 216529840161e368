"""``python -m cancelsync`` → the same CLI as the console script."""

from __future__ import annotations

import sys

from cancelsync.cli import main

sys.exit(main())
