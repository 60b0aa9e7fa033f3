"""Empty filter: what a threshold on "is there an animal?" removes, and which animals it loses.

The score is a detector's largest confidence for imported MegaDetector/SpeciesNet runs, else
``1 - p(empty)`` (every non-empty class counts as "animal"); ``analysis.empty_filter`` does
the counting, with capture-bootstrap intervals.
"""
from __future__ import annotations

import streamlit as st

from analysis.empty_filter import (THRESHOLDS, filter_at, filter_curve, lost_breakdown,
                                   lost_items, run_scores, truth)
from analysis.plots import empty_filter_figure
from dashboard import components, loaders, state

DIMENSION_TITLES = {"species": "Species", "day_night": "Day / night", "frame": "Frame position",
                    "site": "Site"}

view = state.current()
ev = loaders.evalset(view)
st.title("Empty filter")
components.stop_if_empty(ev)
if "empty" not in ev.classes:
    st.info("This run has no `empty` class, so it cannot say an image is empty.",
            icon=":material/filter_alt_off:")
    st.stop()

score, source = run_scores(ev, detector=loaders.detector_scores(view.run_path))
animal = truth(ev.labels, ev.classes)
seq = ev.meta["seq_id"].astype(str).to_numpy()
st.caption(f"An image is removed when its animal score ({source}) is below the threshold; "
           f"{int((~animal).sum()):,} truly empty and {int(animal.sum()):,} animal images in "
           "this view. Intervals resample whole captures.")

options = [f"{t:.2f}" for t in THRESHOLDS]
default = "0.20" if source == "detector confidence" else "0.50"
threshold = float(state.url_widget(st.select_slider, "Threshold", options, key="ef_t",
                                   default=default))

cols = st.columns(4)
for level, (c1, c2) in (("image", cols[:2]), ("capture", cols[2:])):
    at = loaders.cached_table(view, filter_at, score, animal, seq, threshold=threshold,
                              level=level)
    noun = "images" if level == "image" else "captures"
    with c1:
        components.metric_card(f"Empty {noun} removed", at["empty_removed"],
                               at["empty_removed_ci"],
                               help=f"{at['n_empty_removed']:,} of {at['n_empty']:,}")
    with c2:
        components.metric_card(f"Animal {noun} lost", at["animal_lost"], at["animal_lost_ci"],
                               help=f"{at['n_animal_lost']:,} of {at['n_animal']:,}"
                                    + (" (a capture is lost when all its frames are removed)"
                                       if level == "capture" else ""))

level = "capture" if view.level == "sequence" else "image"
curve = loaders.cached_table(view, filter_curve, score, animal, seq_id=seq, level=level)
components.figure(empty_filter_figure(curve, threshold=threshold, x_title=f"threshold on {source}",
                                      title=f"Empty-image filter ({level} level)"),
                  "empty_filter", config={"displayModeBar": False})

st.subheader("Where the lost animals come from")
table = loaders.cached_table(view, lost_breakdown, score, ev.labels, ev.classes, ev.meta,
                             threshold=threshold)
by = state.url_widget(st.segmented_control, "Break down by", list(DIMENSION_TITLES),
                      key="ef_by", default="species", format_func=DIMENSION_TITLES.get,
                      required=True)
components.table(table[table["dimension"] == by].drop(columns="dimension"), hide_index=True,
             column_config={
                 "lost_rate": st.column_config.ProgressColumn("lost", format="percent",
                                                              min_value=0.0, max_value=1.0),
                 "lost_rate_lo": st.column_config.NumberColumn("95% CI lo", format="%.3f"),
                 "lost_rate_hi": st.column_config.NumberColumn("95% CI hi", format="%.3f"),
                 "share_of_lost": st.column_config.NumberColumn("share of lost",
                                                                format="percent")})

st.subheader(f"Animals lost at {threshold:.2f}")
items = loaders.cached_table(view, lost_items, ev, score, threshold=threshold)
components.image_grid(items, key="ef_gal", images_root=view.images_root,
                      capture_ev=loaders.full_evalset(view), per_page=24,
                      empty="No animal image is lost at this threshold.")
