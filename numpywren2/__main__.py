"""``python -m numpywren2``: the ``npw`` command line (``numpywren2.cli``)."""

import sys

from numpywren2.cli import main

if __name__ == "__main__":
    sys.exit(main())
