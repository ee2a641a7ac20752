"""``kubetfx submit`` and ``kubetfx schedule``: talking to a Kubeflow Pipelines API server.

Kept apart from ``kubetfx.cli`` so that the local commands never import kfp's client.
"""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the cluster commands to the ``kubetfx`` group."""
