"""data.paths.resolve_images_root: the one rule for where a run's images are shown from."""
from __future__ import annotations

from pathlib import Path

import pytest

from data.paths import resolve_images_root


@pytest.mark.parametrize("manifest, override, expect", [
    ("/data/S1", None, "/data/S1"),         # the manifest's root
    ("/data/S1", "/mnt/S1", "/mnt/S1"),     # --images / TRAPLENS_IMAGES wins
    (None, "/mnt/S1", "/mnt/S1"),
    (None, None, None),                     # nothing known: no thumbnails
    ("", "", None),
    (Path("/data/S1"), None, "/data/S1"),   # paths come back as str
])
def test_resolve_images_root(manifest, override, expect):
    assert resolve_images_root(manifest, override=override) == expect
