"""``python -m policy_qa``: the ``policy-qa`` console script, where it is not on PATH."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (pkgutil.walk_packages) must not run the CLI
    sys.exit(main())
