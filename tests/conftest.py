import glob
import os
import sys

# Development loop: an in-place build (ninja -C build/dev) leaves _C*.so in python/tapegrad, and the
# tests then run against the source tree. A clean clone has no such file, so the installed
# package is tested (as CI does).
_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
if glob.glob(os.path.join(_PY, "tapegrad", "_C*.so")) and _PY not in sys.path:
    sys.path.insert(0, _PY)
