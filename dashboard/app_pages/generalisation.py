"""Generalisation: metrics at camera sites the model trained on against sites it never saw.

Accuracy drops at new cameras (Beery et al. 2018; Norman et al. 2023), so a random image split
that shares sites between training and test flatters a model. Training sites come from the
run (``split.parquet`` or its predictions' split column) or, for imported runs, a file.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.decision import TrainSitesError, generalisation_report, parse_train_sites
from analysis.plots import seen_unseen_figure, site_scores_figure
from dashboard import components, loaders, state

view = state.current()
ev = loaders.evalset(view)
st.title("Generalisation: seen vs unseen camera sites")
st.caption(f"{len(ev):,} images · {view.policy} policy · 95 % intervals: bootstrap over "
           "captures")
components.stop_if_empty(ev)

sites, source = loaders.train_sites(view)
if sites is None:
    st.info("This run does not say which sites it trained on (an imported run). Upload its "
            "training sites: one per line, or a CSV with a 'site' or 'location' column.")
    upload = st.file_uploader("Training sites", type=["txt", "csv", "tsv"], key="gen_sites")
    if upload is None:
        st.stop()
    try:
        sites = parse_train_sites(upload.getvalue().decode("utf-8", errors="replace"),
                                  name=upload.name)
    except TrainSitesError as exc:
        st.error(str(exc))
        st.stop()
    source = upload.name

gen = loaders.cached_table(view, generalisation_report, ev, train_sites=sites, source=source,
                           policy=view.policy)
st.caption(f"{gen['n_train_sites']:,} training sites, from {gen['train_sites_source']}."
           + (f" {gen['n_train_excluded']:,} training images left out: scores are on held-out "
              "images only." if gen["n_train_excluded"] else ""))

if gen["all_unseen"]:
    spread = gen["site_spread"]
    st.info(f"Every evaluated site is unseen (the run was split by location): there is no "
            f"seen/unseen gap to measure. The spread of macro F1 over the "
            f"{spread['n_sites']} sites shows how much a new camera can vary.")
    cols = st.columns(4)
    for col, (label, key) in zip(cols, (("Worst site", "min"), ("Lower quartile", "q25"),
                                        ("Median site", "median"), ("Best site", "max"))):
        with col:
            components.metric_card(f"{label} macro F1", spread[key])
else:
    cols = st.columns(3)
    for col, group in zip(cols[:2], ("seen", "unseen")):
        block = gen[group]
        with col:
            components.metric_card(
                f"Macro F1, {group} sites ({block['n']:,} images)",
                "–" if block["macro_f1"] is None else block["macro_f1"],
                block["macro_f1_ci"], help=f"accuracy {block['accuracy'] or 0:.3f}")
    with cols[2]:
        both = gen["seen"]["macro_f1"] is not None and gen["unseen"]["macro_f1"] is not None
        components.metric_card("Gap (seen - unseen)",
                               gen["seen"]["macro_f1"] - gen["unseen"]["macro_f1"] if both
                               else "–", help="how much training sites flatter the model")
    if not gen["unseen"]["n"]:
        st.warning("Every evaluated image is at a training site: these scores say nothing "
                   "about new cameras (a random image or capture split).")
    left, right = st.columns(2)
    with left:
        components.figure(seen_unseen_figure(gen), "seen_unseen", config={"displayModeBar": False})
    with right:
        st.subheader("Per-class gap")
        gap = pd.DataFrame(gen["per_class_gap"])
        components.table(gap[gap["gap"].notna()], hide_index=True, height=320, column_config={
            "f1_seen": st.column_config.NumberColumn("F1 seen", format="%.3f"),
            "f1_unseen": st.column_config.NumberColumn("F1 unseen", format="%.3f"),
            "gap": st.column_config.NumberColumn("gap", format="%+.3f")})

st.subheader("Per site, worst first")
per_site = pd.DataFrame(gen["per_site"])
per_site["interval"] = [None if ci[0] is None else f"{ci[0]:.3f}–{ci[1]:.3f}"
                        for ci in per_site["macro_f1_ci"]]
components.table(per_site.drop(columns="macro_f1_ci"), hide_index=True, height=320,
             column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                            "macro_f1": st.column_config.NumberColumn("macro F1", format="%.3f"),
                            "interval": "95 % interval"})
named = [s for s in per_site["site"] if s is not None]
if named:
    site = st.selectbox("Site to inspect", named, key="gen_site")
    components.page_link("app_pages/top_losses.py", label=f"Gallery: top losses at {site}",
                         icon=":material/photo_library:", query_params={"site": site})
    components.figure(site_scores_figure(per_site), "site_scores", config={"displayModeBar": False})
