"""Co-occurrence: which species share frames, and how many confusions co-presence explains.

An A -> B confusion is an image whose first (primary) label is A and whose arg-max is B; it is
*explained* when B is annotated on the image too (the model named the other animal that is
really there). See ``analysis.cooccurrence``.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.cooccurrence import cooccurrence, pair_stats, rank_pairs
from analysis.evalset import targets
from analysis.gallery import fastai_items
from analysis.plots import cooccurrence_figure, fit_grid
from dashboard import components, loaders, state


def pct(x: float) -> str:
    return "–" if x is None or np.isnan(x) else f"{x:.1%}"


def choose_pair(pairs, clicked: list, key: str = "cooc_pair") -> tuple[str, str]:
    """Pair selector (URL ``cooc_pair=a|b``, default the top-ranked pair, or a grid click)."""
    options = [f"{a} → {b}" for a, b in zip(pairs["a"], pairs["b"])]
    wkey = "w:" + key
    if wkey not in st.session_state:
        st.session_state[wkey] = (state.get_param(key) or "").replace("|", " → ")
    if st.session_state[wkey] not in options:
        st.session_state[wkey] = options[0]
    if clicked and st.session_state.get("cooc_clicked") != clicked:  # a new click on the grid
        st.session_state["cooc_clicked"] = clicked
        pick = f"{clicked[0]['y']} → {clicked[0]['x']}"  # row class A, column class B
        if pick in options:
            st.session_state[wkey] = pick
    value = st.selectbox("Pair (A labelled, taken for B)", options, key=wkey,
                         help="ranked by confusions explained by co-presence; click a cell of "
                              "the grid to pick its pair")
    state.set_param(key, None if value == options[0] else value.replace(" → ", "|"))
    a, b = value.split(" → ", 1)
    return a, b


view = state.current()
ev = loaders.evalset(view)
st.title("Co-occurrence")
st.caption("Species annotated together (zebra with wildebeest herds): a single-label score "
           "charges the model for naming the other species that is really there.")
components.stop_if_empty(ev)

pairs = loaders.cached_table(view, rank_pairs, ev, policy=view.policy,
                             k=None, min_together=1)
left, right = st.columns([3, 2])
with left:
    by = st.segmented_control("Count", ["image", "capture"], key="cooc_by", default="image",
                              required=True, help="images with both species, or captures")
    matrix = loaders.cached_table(view, cooccurrence, ev, by=by)
    present = np.flatnonzero(np.diag(matrix) > 0)
    fig = cooccurrence_figure(matrix, ev.classes, order=present,
                              title=f"Species annotated together ({by}s)")
    fit_grid(fig, 620 if len(present) <= 25 else 1000)
    event = components.figure(fig, "cooccurrence", key="cooc_fig", on_select="rerun",
                              selection_mode="points", width="content",
                              config={"displayModeBar": False})
    clicked = list(event.selection.points) if event is not None else []
if pairs.empty:
    right.info("No image in this view carries two species, so nothing co-occurs.")
    st.stop()
with right:
    a, b = choose_pair(pairs, clicked)
    s = pair_stats(ev, a, b, policy=view.policy)
    A, B = components.esc(a), components.esc(b)  # class names from the dataset: inert text
    st.markdown(f"Error rate of **{A}** images")
    c1, c2 = st.columns(2)
    with c1:
        components.metric_card(f"with {B}", pct(s["a_error_with_b"]),
                               help=f"{s['n_a_with_b']:,} images labelled {A} also carry {B}")
    with c2:
        components.metric_card(f"without {B}", pct(s["a_error_without_b"]),
                               help=f"{s['n_a_without_b']:,} images labelled {A} without {B}")
    components.metric_card(
        "Confusions explained by co-presence", pct(s["a_to_b_explained"]),
        help=f"share of images labelled first {A} and predicted {B} where {B} is annotated too")
    st.markdown(f"**{s['a_to_b']:,}** image(s) labelled **{A}** were predicted **{B}**; in "
                f"**{s['a_to_b_with_b']:,}** of them {B} is annotated as well. {A} and {B} "
                f"share **{s['images_together']:,}** images.")
    components.table(pairs.head(10)[["a", "b", "images_together", "a_to_b", "a_to_b_explained"]],
                 hide_index=True, column_config={
                     "images_together": "together", "a_to_b": "A → B",
                     "a_to_b_explained": st.column_config.ProgressColumn(
                         "explained", format="percent", min_value=0.0, max_value=1.0)})

ia, ib = ev.class_index(a), ev.class_index(b)
confused = (ev.primary == ia) & (ev.pred == ib)
explained, unexplained = confused & ev.labels[:, ib], confused & ~ev.labels[:, ib]
y_true, y_pred = targets(ev, policy="primary")  # captions in the single-label view
tabs = st.tabs([f"Explained: {B} is there too ({int(explained.sum())})",
                f"Unexplained ({int(unexplained.sum())})"])
for tab, rows, key in ((tabs[0], explained, "cooc_exp"), (tabs[1], unexplained, "cooc_unexp")):
    with tab:
        items = fastai_items(ev, np.flatnonzero(rows), y_true, y_pred,
                             limit=components.GALLERY_MAX)
        components.image_grid(items, key=key, images_root=view.images_root,
                              total=int(rows.sum()),
                              capture_ev=loaders.full_evalset(view), per_page=12,
                              legend=components.FASTAI_LEGEND + " (actual = first label)",
                              empty=f"No {A} → {B} confusions of this kind.")
