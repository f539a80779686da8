"""Tests of lmcore/train import `objective_models` (tiny models, token data) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
