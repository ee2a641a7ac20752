"""``python -m kubetfx.cli``: the ``kubetfx`` command (for ``python -X importtime`` and profilers)."""

from kubetfx.cli import main

main()
