"""What the export formats share: their error and the export timestamp.

Every export file is written through :func:`data.files.atomic_write` (a temporary file in the
same folder, flushed and fsynced, then ``os.replace``): a crash or a kill mid-export leaves the
previous export as it was.
"""
from __future__ import annotations

from datetime import datetime, timezone


class ExportError(ValueError):
    """An export cannot be written as asked (message names the path and the reason)."""


def now() -> str:
    """The current UTC time, ISO 8601 to the second (export stamps)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
