"""The lookups and cache keys added for speed give the same answers as the plain computations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.compare import compare
from analysis.evalset import evalset_from_arrays
from analysis.gallery import fastai_items
from dashboard import components, loaders
from tests.synth import make_arrays, small_evalset


@pytest.fixture
def ev():
    return small_evalset()


def test_gallery_caption_from_facts_equals_fastai_caption(ev):
    from analysis.evalset import targets

    y_true, y_pred = targets(ev, policy="set")
    items = fastai_items(ev, np.flatnonzero(y_true != y_pred), y_true, y_pred)
    row = items.iloc[0]
    assert components._caption(row) == components.fastai_caption(
        row["predicted"], row["actual"], row["loss"], row["p_predicted"], row["p_actual"])
    assert components._caption(pd.Series({"caption": "given"})) == "given"
    assert list(items["loss"]) == sorted(items["loss"], reverse=True)


def test_compare_fast_path_equals_reordered_runs(ev):
    probs_b, *_ = make_arrays(300, 5, seed=4)
    ev_b = evalset_from_arrays(probs_b, ev.labels, primary=ev.primary, meta=ev.meta,
                               image_ids=ev.image_ids)
    fast = compare(ev, ev_b, n_resamples=20)  # identical rows: no re-indexing
    perm = np.random.default_rng(0).permutation(len(ev))
    shuffled = ev_b.subset(perm)
    slow = compare(ev, shuffled, n_resamples=20)  # B shuffled: aligned by id
    rows = ("fixed_rows_b", "broken_rows_b")  # rows in the B given: the same images
    assert {k: v for k, v in fast.items() if k not in rows} == \
        {k: v for k, v in slow.items() if k not in rows}
    for k in rows:
        assert ev_b.image_ids[fast[k]].tolist() == shuffled.image_ids[slow[k]].tolist()


def test_table_key_ignores_comparison_run_and_presenter_mode(view_of):
    base = view_of()
    assert loaders._table_key(base) == loaders._table_key(
        base.with_(compare="synthetic_b", presenter=True))
    assert loaders._table_key(base) != loaders._table_key(base.with_(split="test"))
    assert loaders.run_version(base, "synthetic_b").startswith("synthetic_b:")
