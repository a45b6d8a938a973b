"""`make lab [DIR=path]`: JupyterLab on 127.0.0.1 with a fresh loopback workspace, on DIR
(default: the example notebooks). The same as `python -m mlrun_magic.testing lab [PATH]`; see
mlrun_magic/testing/lab.py.
"""

from __future__ import annotations

import sys

from mlrun_magic.testing.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["lab", *sys.argv[1:]]))
