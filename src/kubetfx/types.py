"""Artifact kinds, kept importable under their old name for code not yet moved to
:mod:`kubetfx.artifacts.kinds`, where they live."""

from kubetfx.artifacts.kinds import (  # noqa: F401
    ANOMALIES,
    BLESSING,
    EVALUATION,
    EXAMPLES,
    KFP_TITLE,
    MODEL,
    PUSHED_MODEL,
    SCHEMA,
    SERVING_DRIFT,
    STATISTICS,
    TYPE_KEY,
    expect,
    kfp_title,
)
