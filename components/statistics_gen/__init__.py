"""StatisticsGen: TFDV statistics per split, with a self-contained HTML view (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.statistics_gen.component import statistics_gen

__all__ = ["statistics_gen"]
