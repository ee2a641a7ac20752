"""data_change_check: has the data changed since the last run that trained on it?

Plain Python, no KFP: :func:`run` takes the Examples artifact's metadata, an open
metadata store (or None when lineage is off) and the running pipeline's identity, and
returns a :class:`ChangeCheckResult`. It reads lineage (never writes it) through
:func:`kubetfx.lineage.changes.last_trained_data`, whose docstring defines "the last run
that trained".

"Unchanged" means exactly: the ``fingerprint`` ExampleGen recorded on these Examples (a
hash of the input files' base names, sizes and bytes) equals the one on the Examples
that the last finished training run of the same pipeline evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubetfx.artifacts.kinds import EXAMPLES, expect
from kubetfx.errors import KubetfxError

if TYPE_CHECKING:
    from kubetfx.lineage.changes import TrainedData


class MissingFingerprintError(KubetfxError):
    """The Examples carry no content fingerprint to compare."""


@dataclass
class ChangeCheckResult:
    """The answer and why; ``changed`` gates training."""

    changed: bool
    reason: str
    fingerprint: str
    span: int
    previous_run: str = ""
    previous_fingerprint: str = ""
    previous_span: int | None = None


def _short(fingerprint: str) -> str:
    return fingerprint[:12] if fingerprint else "none"


def _span(metadata: Mapping[str, Any]) -> int:
    value = metadata.get("span", 0)
    return int(value) if isinstance(value, int | float) else 0


def run(
    examples_metadata: Mapping[str, Any],
    examples_uri: str,
    *,
    store: Any,
    pipeline_name: str,
    run_id: str,
    force: bool = False,
) -> ChangeCheckResult:
    """Compare the Examples' fingerprint with the one the last finished training run used.

    Args:
        examples_metadata: The Examples artifact's metadata (ExampleGen's ``fingerprint``, ``span``).
        examples_uri: The Examples' URI, for messages.
        store: An open metadata store, or None when lineage is off.
        pipeline_name: The running pipeline; only its own runs count.
        run_id: The running run, left out of the search.
        force: Report a change whatever the data (retrain on purpose).

    Returns:
        ``changed`` True unless the fingerprints are equal; the reason in one line.

    Raises:
        MissingFingerprintError: The Examples have no ``fingerprint`` (not from ExampleGen).
    """
    expect(EXAMPLES, examples_metadata, "examples", examples_uri)
    fingerprint = str(examples_metadata.get("fingerprint") or "")
    if not fingerprint:
        raise MissingFingerprintError(
            f"input 'examples' ({examples_uri}) has no 'fingerprint' in its metadata; "
            "wire data_change_check to example_gen's examples output"
        )
    span = _span(examples_metadata)
    current = f"span {span}, fingerprint {_short(fingerprint)}"

    def answer(changed: bool, reason: str, last: TrainedData | None = None) -> ChangeCheckResult:
        if last is None:
            return ChangeCheckResult(changed=changed, reason=reason, fingerprint=fingerprint, span=span)
        return ChangeCheckResult(
            changed=changed,
            reason=reason,
            fingerprint=fingerprint,
            span=span,
            previous_run=last.run_id,
            previous_fingerprint=last.fingerprint,
            previous_span=last.span,
        )

    if force:
        return answer(True, f"forced: training on {current} regardless")
    if store is None:
        return answer(
            True, f"changed: lineage is off (no KUBETFX_METADATA), nothing to compare {current} with"
        )
    from kubetfx.lineage.changes import last_trained_data

    last = last_trained_data(store, pipeline_name, exclude_run=run_id)
    if last is None:
        return answer(
            True, f"changed: no earlier run of {pipeline_name} trained and finished; {current} is new"
        )
    if last.fingerprint == fingerprint:
        return answer(
            False, f"unchanged: {current} is what run {last.run_id} trained on; nothing to do", last
        )
    before = f"span {last.span}, fingerprint {_short(last.fingerprint)}"
    return answer(True, f"changed: {current} differs from {before} that run {last.run_id} trained on", last)
