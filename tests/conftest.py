import os
import sys

# The development loop runs the tests from the source tree (PYTHONPATH=python); make that the default.
_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
if _PY not in sys.path:
    sys.path.insert(0, _PY)
