"""Tests of lmcore/models import `attention_inputs` (q, k, v and masks) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
