"""One root for every error kubetfx raises, so callers can catch all of ours.

Messages use the user's words (file, line, column, feature, parameter), include the
offending value and end with what to do.
"""

from __future__ import annotations


class KubetfxError(Exception):
    """Root of all kubetfx errors."""


class ConfigError(KubetfxError):
    """A setting (metadata store, pipeline root, ...) is missing or malformed."""


class PipelineSpecError(KubetfxError):
    """A pipeline file is not a valid compiled KFP pipeline."""


class UnsupportedLocallyError(PipelineSpecError):
    """A pipeline uses a construct the local runner does not support."""


class ParameterError(KubetfxError):
    """A run parameter is unknown, missing or of the wrong type."""


class MetadataStoreError(KubetfxError):
    """The ML Metadata store cannot be reached or used."""


class InputDataError(KubetfxError):
    """Input data is missing or malformed. The message names file, line and column."""


class MissingExtraError(KubetfxError):
    """A heavy optional dependency is not installed."""


def missing_runtime(module: str, err: ImportError) -> MissingExtraError:
    """Build the error raised when a runtime-only library is absent."""
    return MissingExtraError(
        f"{module} is needed here but is not installed; "
        f"install the runtime profile: pip install 'kubetfx[runtime]' ({err})"
    )
