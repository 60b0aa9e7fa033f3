"""Once-per-run tables are prepared in the background after a run loads; a page that needs
them while they are still being prepared shows a progress bar, then renders."""
from __future__ import annotations

import pytest

from dashboard import loaders


def test_loading_a_run_prepares_it_in_the_background(view_of):
    view = view_of()
    full = loaders.full_evalset(view)
    loaders.wait_prefetched(timeout=120)
    assert loaders.preparation(view) is None                 # done
    for key in ("pred", "targets:set", "targets:primary", "groups", "ranking:loss",
                "aggregate:mean"):
        assert key in full._cache, key
    # the unfiltered capture-level view is the prepared set itself: no recomputation
    assert loaders.evalset(view, level="sequence").probs is full._cache["aggregate:mean"].probs


@pytest.mark.parametrize("page", ["top_losses", "calibration", "sequences"])
def test_page_shows_progress_while_preparing(app, monkeypatch, page):
    polls = iter([(0.25, "per-image losses"), (0.75, "capture aggregates")])
    seen = []

    def pending(view, *, run=None):
        state = next(polls, None)
        seen.append(state)
        return state

    monkeypatch.setattr(loaders, "preparation", pending)
    at = app(page)
    assert not at.exception, at.exception
    assert seen[:3] == [(0.25, "per-image losses"), (0.75, "capture aggregates"), None]
    labels = [s.label for s in at.get("expandable")] + [s.proto.label for s in at.status] \
        if hasattr(at, "status") else [s.label for s in at.get("expandable")]
    assert any("Run prepared" in str(label) for label in labels), labels
    assert len(at.title) == 1                                   # then the page rendered
