"""Confusion matrix: click a cell (or a most-confused row) to see exactly its images below."""
from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.confusion import OTHER, cell_mask, class_order, most_confused, top_n_other
from analysis.evalset import at_level, targets
from analysis.gallery import fastai_items
from analysis.labelspace import display_names
from analysis.metrics import confusion
from analysis.plots import confusion_figure, fit_grid
from dashboard import components, loaders, state

ORDERS = ("support", "name", "cluster")
NORMS = {"none": "counts", "true": "row share", "pred": "column share"}

view = state.current()
st.title("Confusion matrix")
taxon = components.taxon_level()
ev = at_level(loaders.evalset(view, level=view.level), taxon)
noun = "captures" if view.level == "sequence" else "images"
st.caption(f"{len(ev):,} {noun} · rows actual, columns predicted · "
           f"{components.esc(view.policy)} policy · {components.esc(taxon)} level · "
           "click a cell to see its images")
components.stop_if_empty(ev)
classes = ev.classes
y_true, y_pred = targets(ev, policy=view.policy)  # memoised on the (cached) set
cm = confusion(y_true, y_pred, len(classes))
present = int(((cm.sum(axis=0) + cm.sum(axis=1)) > 0).sum())

# --- controls (all in the URL) ----------------------------------------------------------------
c1, c2, c3, c4 = st.columns([2, 2, 3, 1])
with c1:
    order_by = state.url_widget(st.segmented_control, "Order", ORDERS, key="cm_order",
                                default="support", required=True,
                                help="cluster: classes confused with each other side by side")
with c2:
    default_top = min(present, 30)
    if "cm_top_input" not in st.session_state:
        st.session_state["cm_top_input"] = int(np.clip(state.get_int("cm_top", default_top), 2,
                                                       len(classes)))
    top_n = st.number_input("Top N classes (+ other)", min_value=2, max_value=len(classes),
                            key="cm_top_input", help="the rest pooled as 'other'")
    state.set_param("cm_top", None if top_n == default_top else top_n)
with c3:
    norm = state.url_widget(st.segmented_control, "Colour by", list(NORMS), key="cm_norm",
                            default="none", required=True, format_func=NORMS.get,
                            help="row share: each actual class's row sums to 1; column "
                                 "share: each predicted class's column sums to 1")
with c4:
    if "cm_log_toggle" not in st.session_state:
        st.session_state["cm_log_toggle"] = state.get_param("cm_log", "1") == "1"
    log_color = st.toggle("Log colour", key="cm_log_toggle", disabled=norm != "none")
    state.set_param("cm_log", None if log_color else "0")

shown_cm, shown = top_n_other(cm, classes, n=int(top_n))
order = loaders.cached_table(view, class_order, shown_cm, shown, by=order_by)
fig = loaders.cached_figure(view, confusion_figure, shown_cm, shown, normalize=norm,
                            log_color=log_color, order=order,
                            hover_names=display_names(shown))


def pick(key: str, cell: str | None) -> None:
    """A new click (chart point or table row) replaces the URL's cell; a repeat does not."""
    if cell and cell != st.session_state.get(key):
        state.set_param("cm_cell", cell)
        state.set_param("cm_gal_page", None)
    st.session_state[key] = cell


def clicked_cell(point: dict) -> str:
    """``actual|predicted`` of a selected marker (customdata holds the class indices)."""
    custom = point.get("customdata")
    if isinstance(custom, dict):  # Streamlit sends a list as {"0": a, "1": p, ...}
        custom = [custom[k] for k in sorted(custom, key=int)]
    if custom is not None and len(custom) >= 2:
        return f"{shown[int(custom[0])]}|{shown[int(custom[1])]}"
    return f"{point['y']}|{point['x']}"


wide = len(shown) > 20  # 61 classes need the full width to stay readable (>= 11 px cells)
fit_grid(fig, 1000 if wide else 700)
left, right = (st.container(), st.container()) if wide else st.columns([2, 1])
with left:
    event = components.figure(fig, "confusion", key="cm_chart", on_select="rerun",
                              selection_mode="points", width="content",
                              config={"displayModeBar": False})
    points = event.selection.points if event is not None else []
    pick("cm_last_point", clicked_cell(points[0]) if points else None)
with right:
    st.markdown("**Most confused**")
    top = loaders.cached_table(view, most_confused, cm, classes, k=15)
    rows = components.table(top, key="cm_most", on_select="rerun", selection_mode="single-row",
                        hide_index=True, width="stretch",
                        column_config={"rate": st.column_config.NumberColumn(format="%.2f")})
    sel = rows.selection.rows if rows is not None else []
    pick("cm_last_row", f"{top['actual'].iloc[sel[0]]}|{top['predicted'].iloc[sel[0]]}"
         if sel else None)

# --- the gallery of the chosen cell -----------------------------------------------------------
cell = state.get_param("cm_cell")
names = (cell or "").split("|")
if len(names) != 2 or not all(n in classes or n == OTHER for n in names):
    st.info("Click a cell of the matrix, or a row of the most-confused list, to see its images.")
    st.stop()


def members(name: str) -> list[int]:
    """Class indices behind a displayed name ("other" pools every class not shown)."""
    return [i for i, c in enumerate(classes) if c not in shown] if name == OTHER else \
        [classes.index(name)]


actual, predicted = (members(n) for n in names)
if len(actual) == 1 and len(predicted) == 1:
    mask = cell_mask(y_true, y_pred, actual[0], predicted[0])
else:
    mask = np.isin(y_true, actual) & np.isin(y_pred, predicted)
h1, h2 = st.columns([5, 1])
h1.subheader(f"actual {components.esc(names[0])} → predicted {components.esc(names[1])}: "
             f"{int(mask.sum()):,} {noun}")
if h2.button("Clear", key="cm_clear", icon=":material/close:"):
    state.set_param("cm_cell", None)
    st.rerun()
items = fastai_items(ev, np.flatnonzero(mask), y_true, y_pred, limit=components.GALLERY_MAX)
components.image_grid(items, key="cm_gal", images_root=view.images_root, total=int(mask.sum()),
                      capture_ev=loaders.full_evalset(view), legend=components.FASTAI_LEGEND,
                      empty="No images in this cell.")
