"""``python -m cnn_explorer`` — same as the ``cnn-explorer`` command."""

import sys

from cnn_explorer.app import main

sys.exit(main())
