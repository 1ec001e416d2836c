"""``python -m workbench ...``: the CLI, also as ``accelerate launch -m workbench pretrain ...``."""

import sys

from workbench.cli import main

sys.exit(main())
