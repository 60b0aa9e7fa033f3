"""Calibration & automation: can the model's confidence be trusted, and how much can it label?

Per-class thresholds accept a class's predictions from the most confident down while their
precision stays at the target (``analysis.coverage.class_thresholds``); every image below its
class threshold still needs a person. 96.6 % is the accuracy of Snapshot Serengeti's volunteer
consensus (Norouzzadeh et al. 2018, PNAS), the bar the original project aimed at.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.calibration import ece, per_class_ece, reliability
from analysis.coverage import VOLUNTEER_ACCURACY, class_thresholds, coverage_curve
from analysis.plots import coverage_figure, reliability_figure
from dashboard import components, loaders, state

TARGETS = {"0.9": "90 %", "0.95": "95 %", str(VOLUNTEER_ACCURACY): "96.6 % (volunteers)",
           "0.99": "99 %"}

view = state.current()
ev = loaders.evalset(view, level=view.level)
noun = "captures" if view.level == "sequence" else "images"
st.title("Calibration & automation")
st.caption(f"Scored on {len(ev):,} {noun} ({view.level} level, {view.policy} policy).")
components.stop_if_empty(ev)

left, right = st.columns(2)
with left:
    n_bins = st.select_slider("Bins", [5, 10, 15, 20, 30], value=15, key="cal_bins")
    bins = loaders.cached_table(view, reliability, ev, n_bins=n_bins, policy=view.policy)
    overall = loaders.cached_table(view, ece, ev, n_bins=n_bins, policy=view.policy)
    st.plotly_chart(reliability_figure(bins, ece=overall), config={"displayModeBar": False})
    components.metric_card("Expected calibration error", overall,
                           help="mean |accuracy - confidence| over bins, weighted by images")
with right:
    target = state.url_widget(st.segmented_control, "Target precision", list(TARGETS),
                              key="cal_target", default="0.95", required=True,
                              format_func=TARGETS.get,
                              help="96.6 % = volunteer consensus accuracy "
                                   "(Norouzzadeh et al. 2018)")
    curve = loaders.cached_table(view, coverage_curve, ev, policy=view.policy)
    st.plotly_chart(coverage_figure(curve, targets=[float(target)]),
                    config={"displayModeBar": False})

th = loaders.cached_table(view, class_thresholds, ev, target_precision=float(target),
                          policy=view.policy)
tot = th.attrs
st.subheader(f"Per-class thresholds for {TARGETS[target]} precision")
c1, c2, c3 = st.columns(3)
with c1:
    components.metric_card(f"Auto-labelled {noun}", int(tot["n_accepted"]),
                           help="predictions at or above their class's threshold")
with c2:
    components.metric_card(f"{noun.capitalize()} that still need a person",
                           int(tot["n_left"]),
                           help=f"{tot['n_left'] / max(tot['n'], 1):.1%} of {tot['n']:,}")
with c3:
    acc = tot["accuracy_accepted"]
    components.metric_card("Accuracy of the auto-labelled", "–" if acc is None else acc)
st.markdown(f"With per-class thresholds, **{tot['n_accepted'] / max(tot['n'], 1):.1%}** of the "
            f"{noun} could be labelled by the model at {TARGETS[target]} precision; "
            f"**{tot['n_left']:,}** still need a person.")

cal = loaders.cached_table(view, per_class_ece, ev, n_bins=n_bins,
                           policy=view.policy)[["class", "ece"]]
table = th.merge(cal, on="class", how="left")
table = table[table["n_predicted"] > 0].sort_values("n_left", ascending=False, kind="stable")
st.dataframe(table, hide_index=True, column_config={
    "threshold": st.column_config.NumberColumn(format="%.3f", help="NaN: target unreachable"),
    "precision": st.column_config.NumberColumn(format="%.3f"),
    "n_predicted": "predicted", "n_accepted": "auto-labelled", "n_left": "left for a person",
    "coverage": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
    "ece": st.column_config.NumberColumn("ECE (one-vs-rest)", format="%.3f")})
unreachable = table.loc[np.isnan(table["threshold"]), "class"].tolist()
if unreachable:
    st.caption(f"No threshold reaches the target for: {components.esc(', '.join(unreachable))} "
               "(every prediction of these classes goes to a person).")
