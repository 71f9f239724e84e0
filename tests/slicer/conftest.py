"""The Slicer module's plain-Python Lib is imported the way Slicer imports it: from the module folder."""

import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[2] / "slicer_extension" / "RevnetsSegmentation"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))
