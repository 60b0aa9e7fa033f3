"""Compare runs: what changed from run A (the sidebar's run) to run B (its "Compare with")."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analysis.compare import compare
from analysis.confusion import top_n_other
from analysis.gallery import fastai_items
from analysis.plots import compare_f1_figure, confusion_figure, fit_grid
from dashboard import components, loaders, state


view = state.current()
st.title("Compare runs")
if not view.compare:
    st.info("Choose a second run under **Compare with** in the sidebar to see, class by "
            "class, what it fixed and what it broke relative to this run.",
            icon=":material/compare_arrows:")
    st.stop()

ev_a = loaders.evalset(view)
ev_b = loaders.evalset(view, run=view.compare)
st.caption(f"A = **{components.esc(view.run)}**, B = **{components.esc(view.compare)}**, on the "
           f"images both runs predicted ({components.esc(view.policy)} policy; intervals: "
           "paired bootstrap over captures).")
components.stop_if_empty(ev_a, ev_b)
res = loaders.cached_table(view, compare, ev_a, ev_b, policy=view.policy,
                           n_resamples=loaders.COMPARE_RESAMPLES)

c = st.columns(4)
with c[0]:
    components.metric_card(f"Accuracy of B (A: {res['accuracy_a']:.3f})", res["accuracy_b"],
                           help="on the images both runs predicted")
with c[1]:
    components.metric_card("Macro F1 change (B − A)", f"{res['macro_f1_delta']:+.3f}",
                           res["macro_f1_delta_ci"])
with c[2]:
    components.metric_card("Images B fixed", int(res["n_fixed"]), help="A wrong, B right")
with c[3]:
    components.metric_card("Images B broke", int(res["n_broken"]), help="A right, B wrong")
if res["classes_left_out"]:
    st.caption(f"The runs' class lists differ: compared over the classes both can predict; "
               f"{len(res['classes_left_out'])} class(es) left out ({res['n_left_out']:,} "
               "images of A without a compared label):")
    st.text(", ".join(res["classes_left_out"]))  # names from the files: text, not Markdown
if res["n_only_a"] or res["n_only_b"]:
    st.caption(f"{res['n_only_a']:,} images only A predicted and {res['n_only_b']:,} only B "
               "predicted are left out.")

per_class = pd.DataFrame(res["per_class"])
per_class = per_class[per_class["support"] > 0]
components.figure(compare_f1_figure({"per_class": per_class.to_dict("records")}),
                  "compare_f1", config={"displayModeBar": False})

top = state.url_widget(st.select_slider,
                       "Classes in the matrices (most frequent; the rest pooled as other)",
                       ["5", "10", "15", "20", "30", "all"], key="cmp_top", default="15")
left, right = st.columns(2)
for col, run, name in ((left, view.run, "A"), (right, view.compare, "B")):
    cm = loaders.confusion(view, run=run)
    classes = loaders.evalset(view, run=run).classes
    if top != "all":
        cm, classes = top_n_other(cm, classes, n=int(top))
    with col:
        fig = confusion_figure(cm, classes, log_color=True, title=f"{name}: {run}")
        components.figure(fit_grid(fig, 580), f"confusion_{name}", width="content",
                          key=f"cmp_cm_{name}", config={"displayModeBar": False})

y_true, y_pred = loaders.targets(view, run=view.compare)
tabs = st.tabs([f"Fixed by B ({res['n_fixed']:,})", f"Broken by B ({res['n_broken']:,})"])
for tab, key, rows in ((tabs[0], "cmp_fixed", res["fixed_rows_b"]),
                       (tabs[1], "cmp_broken", res["broken_rows_b"])):
    with tab:
        items = fastai_items(ev_b, np.asarray(rows, np.int64), y_true, y_pred,
                             limit=components.GALLERY_MAX)
        components.image_grid(items, key=key, images_root=view.images_root, total=len(rows),
                              capture_ev=loaders.full_evalset(view, run=view.compare),
                              per_page=12, legend="B's " + components.FASTAI_LEGEND.lower(),
                              empty="No such images.")
