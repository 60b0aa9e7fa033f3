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


def test_overview_findings_wait_for_the_background_without_blocking(app, monkeypatch, texts):
    """On a large run the Overview shows its headline at once; the findings and worst sites
    say they are being prepared (a progress bar) instead of computing while the user waits."""
    from dashboard import components

    monkeypatch.setattr(components, "DEFER_ROWS", 0)
    monkeypatch.setattr(loaders, "preparation",
                        lambda view, *, run=None: (0.4, "co-occurrence pairs"))
    at = app("overview")
    assert not at.exception, at.exception
    bars = [str(p.proto.text) for p in at.get("progress")]
    assert len(bars) == 3 and all("co-occurrence pairs" in b for b in bars), bars
    shown = texts(at)
    assert "Accuracy=" in shown and "Sequence labels" not in shown   # headline, no findings yet
    monkeypatch.setattr(loaders, "preparation", lambda view, *, run=None: None)
    at.run()                                                          # prepared: filled in
    assert not at.get("progress") and "Worst slices" in texts(at)


def test_prepared_run_holds_the_pages_first_tables(view_of):
    """The background preparation leaves the Overview's findings and worst sites and the
    Calibration page's reliability, ECE and certified thresholds on the run's set, keyed by the
    arguments the pages pass; the Compare page's comparison is computed when the comparison
    run loads."""
    view = view_of(compare="synthetic_b")
    full = loaders.full_evalset(view)
    loaders.prefetch(view, "synthetic_b")
    loaders.wait_prefetched(timeout=120)
    names = {k.split(":")[1] for k in full._cache if k.startswith("memo:")}
    for name in ("analysis.metrics._evaluate", "analysis.sequences.suspects",
                 "analysis.cooccurrence.rank_pairs",
                 "analysis.slices.slice_table", "analysis.calibration.reliability",
                 "analysis.calibration.ece", "analysis.certify.certify_for",
                 "analysis.compare.compare"):
        assert name in names, (name, names)
    fitted = [k for k in full._cache if k.startswith("memo:analysis.calibration.reliability")
              and "('temperature', ('v', None))" not in k]
    assert fitted, "reliability after the fitted temperature is prepared"
