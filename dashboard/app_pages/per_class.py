"""Per-class: precision / recall / F1 with intervals, an F1 bar chart, a class's error gallery."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analysis.evalset import at_level, targets
from analysis.gallery import fastai_items
from analysis.labelspace import display_names
from analysis.metrics import confusion, evaluate
from analysis.plots import f1_bar
from dashboard import components, loaders, state

view = state.current()
st.title("Per-class metrics")
taxon = components.taxon_level()
ev = at_level(loaders.evalset(view, level=view.level), taxon)
st.caption(f"{len(ev):,} {'captures' if view.level == 'sequence' else 'images'} · "
           f"{view.policy} policy · {taxon} level · intervals: bootstrap over captures")
components.stop_if_empty(ev)

# evaluate() aggregates captures itself: it takes the image-level set.
res = loaders.cached_table(view, evaluate, at_level(loaders.evalset(view), taxon),
                           policy=view.policy, level=view.level, n_resamples=200)
y_true, y_pred = targets(ev, policy=view.policy)
cm = confusion(y_true, y_pred, ev.n_classes)
off = cm.copy()
np.fill_diagonal(off, 0)
worst = off.argmax(axis=1)
table = pd.DataFrame(res["per_class"])
cis = np.array(table.pop("f1_ci").tolist(), dtype=float).reshape(-1, 2)
table["f1_low"], table["f1_high"] = cis[:, 0], cis[:, 1]
table["top_confusion"] = [f"{ev.classes[w]} ({off[i, w]})" if off[i, w] else ""
                          for i, w in enumerate(worst)]
table["name"] = display_names(table["class"].tolist())
table = table[table["support"] > 0].sort_values("f1", kind="stable").reset_index(drop=True)

left, right = st.columns([2, 1])
with left:
    st.caption("Click a column header to sort; select a row to see that class's errors.")
    picked = components.table(
        table, key="pc_table", on_select="rerun", selection_mode="single-row", hide_index=True,
        height=min(38 + 35 * len(table), 560), width="stretch",
        column_order=["class", "name", "precision", "recall", "f1", "f1_low", "f1_high",
                      "support", "top_confusion"],
        column_config={
            "name": st.column_config.TextColumn(
                "name", help="vernacular and scientific name (data/taxonomy)"),
            "precision": st.column_config.NumberColumn(format="%.3f"),
            "recall": st.column_config.NumberColumn(format="%.3f"),
            "f1": st.column_config.ProgressColumn("F1", format="%.3f", min_value=0, max_value=1,
                                                 width="small"),
            "f1_low": st.column_config.NumberColumn("F1 low", format="%.3f"),
            "f1_high": st.column_config.NumberColumn("F1 high", format="%.3f"),
            "top_confusion": st.column_config.TextColumn("top confusion"),
        })
with right:
    bars = table.assign(f1_ci=table[["f1_low", "f1_high"]].to_numpy().tolist())
    components.figure(f1_bar(bars, title="F1 with 95% interval"), "f1_per_class",
                      key="pc_f1_bar")

# --- the chosen class's errors ----------------------------------------------------------------
classes = table["class"].tolist()
wkey = state.widget_param("pc_class", "", ["", *classes])
rows = picked.selection.rows if picked is not None else []
if rows and rows != st.session_state.get("pc_last_rows"):  # a new row click wins
    st.session_state[wkey] = classes[rows[0]]
st.session_state["pc_last_rows"] = rows
current = st.selectbox("Class", [""] + classes, key=wkey,
                       format_func=lambda c: c or "(choose a class)")
state.sync_widget("pc_class", "")
if not current:
    st.info("Choose a class (table row or the box above) to see the images it gets wrong.")
    st.stop()

components.species_card(current, confusion=cm, classes=ev.classes, key="pc_card")
kind = st.segmented_control("Errors", ["missed", "false alarms"], default="missed",
                            key="pc_kind", help=f"missed: actual {components.esc(current)}, "
                            f"predicted something else; false alarms: predicted "
                            f"{components.esc(current)}, actually not")
c = ev.classes.index(current)
mask = (y_true == c) & (y_pred != c) if kind != "false alarms" else (y_pred == c) & (y_true != c)
items = fastai_items(ev, np.flatnonzero(mask), y_true, y_pred, limit=components.GALLERY_MAX)
st.subheader(f"{components.esc(current)}: {kind or 'missed'} ({int(mask.sum()):,})")
components.image_grid(items, key="pc_gal", images_root=view.images_root,
                      total=int(mask.sum()),
                      capture_ev=loaders.full_evalset(view), legend=components.FASTAI_LEGEND,
                      empty=f"No {kind} for {components.esc(current)} in this view.")
