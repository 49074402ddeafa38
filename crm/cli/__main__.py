"""`python -m crm.cli`: the `crm` command."""

import sys

from crm.cli import main

sys.exit(main())
