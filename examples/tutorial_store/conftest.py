"""Put this folder on ``sys.path``, so the tests import ``tutorial_store`` as a package would."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
