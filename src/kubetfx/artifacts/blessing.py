"""The ModelBlessing artifact: ``BLESSED`` or ``NOT_BLESSED`` (TFX's layout) and ``reasons.json``.

The Evaluator writes it; the Pusher reads it and decides from the files, not from what the
pipeline passed along. The one rule: blessed means a ``BLESSED`` file and no ``NOT_BLESSED``
one; both, or neither, is no blessing, with a reason saying which.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kubetfx.artifacts.layout import BLESSED_FILE, NOT_BLESSED_FILE, REASONS_FILE


@dataclass(frozen=True)
class Blessing:
    """Whether a model is blessed, and why (or why not)."""

    blessed: bool
    reasons: list[str] = field(default_factory=list)

    def write(self, blessing_dir: str) -> None:
        """Write the blessing file and the reasons."""
        os.makedirs(blessing_dir, exist_ok=True)
        Path(blessing_dir, BLESSED_FILE if self.blessed else NOT_BLESSED_FILE).write_text("")
        Path(blessing_dir, REASONS_FILE).write_text(json.dumps(self.reasons, indent=1))

    @classmethod
    def read(cls, blessing_dir: str) -> Blessing:
        """The blessing a folder holds; its files are the truth (a missing one is no blessing)."""
        blessed_file = Path(blessing_dir, BLESSED_FILE).is_file()
        not_blessed = Path(blessing_dir, NOT_BLESSED_FILE).exists()
        reasons: list[str] = []
        reasons_path = Path(blessing_dir, REASONS_FILE)
        if reasons_path.is_file():
            try:
                loaded = json.loads(reasons_path.read_text() or "[]")
            except json.JSONDecodeError:
                loaded = [f"{reasons_path} is not JSON"]
            reasons = [str(r) for r in loaded] if isinstance(loaded, list) else [str(loaded)]
        if blessed_file and not not_blessed:
            return cls(True, reasons)
        if blessed_file and not_blessed:
            return cls(False, [f"{blessing_dir} has both {BLESSED_FILE} and {NOT_BLESSED_FILE}", *reasons])
        if not not_blessed:
            return cls(False, [f"{blessing_dir} has no {BLESSED_FILE} file", *reasons])
        return cls(False, reasons or ["the Evaluator did not bless the model"])
