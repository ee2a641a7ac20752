"""``python -m kubetfx.local.warm serve|status|stop``."""

import sys

from kubetfx.local.warm.manage import main

sys.exit(main())
