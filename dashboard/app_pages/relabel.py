"""Relabel queue: review label-issue candidates one at a time and record decisions.

Candidates are the full merged ranking (``analysis.issues.issue_table``, every suspect) of the
view's images scored against the *uncorrected* labels, filterable by reason, class, site and
split (or exactly a selection sent from the embedding map), so the queue stays put while
decisions accumulate; an image leaves the queue once it or its capture has a decision in ``data.curation.DecisionStore``
(``data.paths.curation_db()``). Keys: A accept, L set labels, E empty, U unsure, S skip, Z undo.
The pieces are in ``dashboard.relabel_queue``.
"""
from __future__ import annotations

import streamlit as st

from analysis.issues import issue_table
from dashboard import loaders, relabel_queue, state

view = state.current()
dataset = loaders.load_dataset(view.dataset_paths)
st.title("Relabel queue")
curator = relabel_queue.curator_or_stop()

base = view.with_(corrected=False)  # a stable queue: candidates from the labels as published
ev = loaders.evalset(base)
cand = relabel_queue.filtered(ev, loaders.cached_table(base, issue_table, ev))
queue = relabel_queue.progress(cand, curator)
if queue.empty:
    st.success("Nothing left in this queue. Change the filters or export your work below.")
else:
    relabel_queue.review(queue, dataset, curator, view, loaders.full_evalset(base))
relabel_queue.latest_decisions(curator)
relabel_queue.export_section(dataset, view)
