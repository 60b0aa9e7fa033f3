"""Ecology impact: what the model's errors do to captures, abundance, occupancy and activity.

Per species, the ecologist's summaries from the labels against the model (arg-max, or "model
where certified, people elsewhere" at the chosen target), each difference with a capture
bootstrap interval (``analysis.ecology``; how each figure is computed: docs/formats.md).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.decision import activity_for, certified_accept, ecology_for
from analysis.plots import activity_figure, site_difference_figure
from dashboard import components, loaders, state

MODES = {"argmax": "Model (arg-max) everywhere",
         "certified": "Model where certified, people elsewhere"}
TARGETS = {"0.9": "90 %", "0.95": "95 %", "0.99": "99 %"}

view = state.current()
ev = loaders.evalset(view)
st.title("Ecology impact")
st.caption(f"{len(ev):,} images · labels against the model · 95 % intervals: Poisson "
           "bootstrap over captures")
components.stop_if_empty(ev)

left, right = st.columns([2, 1])
with left:
    mode = state.url_widget(st.segmented_control, "Model labels", list(MODES), key="eco_mode",
                            default="argmax", required=True, format_func=MODES.get)
with right:
    target = state.url_widget(st.segmented_control, "Certified at", list(TARGETS),
                              key="eco_target", default="0.95", required=True,
                              format_func=TARGETS.get, disabled=mode != "certified")
accept = (loaders.cached_table(view, certified_accept, ev, target=float(target))
          if mode == "certified" else None)
if accept is not None:
    st.caption(f"The model labels {accept.mean():.1%} of the images (its certified "
               f"predictions); people's labels stand for the rest.")

eco = loaders.cached_table(view, ecology_for, ev, accept=accept)
st.caption(f"{eco['n_captures']:,} captures at {eco['n_sites']} sites, "
           f"{eco['camera_days']:,.0f} camera-days ({eco['effort_note']}).")
table = pd.DataFrame(eco["per_species"])
flagged = table[table["flagged"]]
c1, c2, c3 = st.columns(3)
with c1:
    components.metric_card("Species flagged", f"{len(flagged)} of {len(table)}",
                           help=f"bias above {eco['tolerance']:.0%} in captures, occupancy or "
                                "activity overlap")
if len(table):
    top = table.iloc[0]
    with c2:
        components.metric_card(f"Most biased: {top['species']}", float(top["bias"]))
    with c3:
        components.metric_card(f"Activity overlap, {top['species']}",
                               "–" if pd.isna(top["overlap"]) else float(top["overlap"]),
                               top["overlap_ci"])

for col in ("captures_bias_ci", "occupancy_diff_ci", "overlap_ci"):
    table[col] = [None if ci[0] is None else f"{ci[0]:+.3f} – {ci[1]:+.3f}"
                  if col != "overlap_ci" else f"{ci[0]:.3f} – {ci[1]:.3f}" for ci in table[col]]
num = st.column_config.NumberColumn
st.subheader("Per species, most biased first")
components.table(table, hide_index=True, height=360, column_order=[
    "species", "flagged", "captures_labels", "captures_model", "captures_bias",
    "captures_bias_ci", "rai_labels", "rai_model", "occupancy_labels", "occupancy_model",
    "occupancy_diff_ci", "overlap", "overlap_ci", "overlap_estimator"], column_config={
    "captures_bias": num("captures bias", format="percent"),
    "rai_labels": num("RAI labels", format="%.2f", help="captures per 100 camera-days"),
    "rai_model": num("RAI model", format="%.2f"),
    "occupancy_labels": num("occupancy labels", format="%.2f"),
    "occupancy_model": num("occupancy model", format="%.2f"),
    "occupancy_diff_ci": "occupancy diff 95 %", "captures_bias_ci": "bias 95 %",
    "overlap": num("activity overlap", format="%.3f"), "overlap_ci": "overlap 95 %"})

species = st.selectbox("Species", table["species"].tolist(), key="eco_species")
if species:
    curves = loaders.cached_table(view, activity_for, ev, species, accept=accept)
    row = table[table["species"] == species].iloc[0]
    site = loaders.cached_table(view, ecology_for, ev, accept=accept,
                                site_species=species)["per_site"]
    left, right = st.columns(2)
    with left:
        components.figure(activity_figure(curves, species=species, overlap=None
                                          if pd.isna(row["overlap"]) else float(row["overlap"])),
                          "activity", config={"displayModeBar": False})
    with right:
        rows = pd.DataFrame(site["rows"])
        if rows.empty or rows["rai_diff"].isna().all():
            st.info("No site with a day or more of effort records this species.")
        else:
            components.figure(site_difference_figure(rows, species=species), "site_difference",
                              config={"displayModeBar": False})
