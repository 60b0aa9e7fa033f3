"""Top losses: the images the model is most (or least) wrong about, fastai style."""
from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from analysis.gallery import ranked_items
from analysis.ranking import top_losses
from dashboard import components, loaders, state

ANY = "(any)"
MAX_ROWS = 2000  # a gallery nobody pages through further than this

view = state.current()
# once-per-run tables: prepared in the background after the run loads; show progress
components.wait_prepared(functools.partial(loaders.preparation, view))
ev = loaders.evalset(view)
st.title("Top losses")
st.caption("Loss = cross-entropy against the image's label set (its most probable species). "
           "Site, frame position and split filters are in the sidebar.")
components.stop_if_empty(ev)

y_true, y_pred = loaders.targets(view)
classes = ev.classes
present_true = [c for i, c in enumerate(classes) if np.any(ev.labels[:, i])]
present_pred = [classes[i] for i in
                np.flatnonzero(np.bincount(y_pred, minlength=len(classes)))]

c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
with c1:
    actual = state.url_widget(st.selectbox, "Actual class", [ANY] + present_true,
                              key="tl_actual", default=ANY,
                              help="images whose label set contains this class")
with c2:
    predicted = state.url_widget(st.selectbox, "Predicted class", [ANY] + present_pred,
                                 key="tl_pred", default=ANY)
with c3:
    order = state.url_widget(st.segmented_control, "Order", ["largest", "smallest"],
                             key="tl_order", default="largest", required=True,
                             help="largest: confidently wrong; smallest: confidently right")
with c4:
    if "tl_wrong_toggle" not in st.session_state:
        st.session_state["tl_wrong_toggle"] = state.get_param("tl_wrong") == "1"
    only_wrong = st.toggle("Errors only", key="tl_wrong_toggle")
    state.set_param("tl_wrong", "1" if only_wrong else None)

mask = np.ones(len(ev), dtype=bool)
if actual != ANY:
    mask &= ev.labels[:, classes.index(actual)]
if predicted != ANY:
    mask &= y_pred == classes.index(predicted)
if only_wrong:
    mask &= y_true != y_pred
table = loaders.cached_table(view, top_losses, ev, k=MAX_ROWS,
                             largest=order != "smallest", mask=mask)
items = ranked_items(ev, table)
components.image_grid(items, key="tl_gal", images_root=view.images_root,
                      capture_ev=loaders.full_evalset(view), legend=components.FASTAI_LEGEND,
                      per_page=24, empty="No images match these filters.")
if len(table) == MAX_ROWS:
    st.caption(f"Showing the first {MAX_ROWS:,}; narrow the filters to see others.")
