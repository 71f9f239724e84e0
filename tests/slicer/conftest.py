"""The Slicer module's Lib is imported the way Slicer imports it: from the module folder.

``mrml/`` holds the tests that need Slicer's MRML libraries (the slicer-core wheel, Python 3.12): they are
collected only where ``slicer`` can be imported, i.e. when ``test_mrml.py`` runs them in ``.venv-slicer``.
"""

import importlib.util
import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[2] / "slicer_extension" / "RevnetsSegmentation"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

collect_ignore = [] if importlib.util.find_spec("slicer") else ["mrml"]
