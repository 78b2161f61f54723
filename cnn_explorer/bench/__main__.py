"""``python -m cnn_explorer.bench``: the engine-op benchmark (see :mod:`.ops`)."""

import sys

from cnn_explorer.bench.ops import main

if __name__ == "__main__":  # torch's worker process re-imports this module: run only here
    sys.exit(main())
