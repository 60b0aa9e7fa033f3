"""The relabel queue's pieces: candidates, filters, decision buttons, history and export.

The page (``app_pages/relabel.py``) wires them together; everything here keeps the page's
widget keys (``relabel_*``) and URL params. Decisions go through ``data.curation``'s
``DecisionStore`` (``data.paths.curation_db()``), opened per call and never cached.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboard import components, loaders, state
from dashboard.components import esc
from data.curation import (FORMATS, DecisionError, DecisionStore, ExportError, download_name,
                           export_bytes, parse_labels)
from data.curation.store import check_curator
from data.paths import curation_db

if TYPE_CHECKING:  # pragma: no cover
    from analysis.evalset import EvalSet
    from dashboard.state import ViewState

ANY = "(any)"
FORMAT_NAMES = {"coco": "COCO Camera Traps", "csv": "Labelled CSV", "decisions": "Decisions log",
                "camtrapdp": "Camtrap DP 1.0.2"}
ACTIONS = [("accept", "Accept", "A", "labels := the model's suggestion"),
           ("set", "Set labels", "L", "labels := the species chosen above"),
           ("empty", "Empty", "E", "no animal: labels := empty"),
           ("unsure", "Unsure", "U", "recorded, labels unchanged"),
           ("skip", "Skip", "S", "recorded, labels unchanged")]
KIND_NAMES = {"inherited_label": "inherited label", "missed_species": "missed species",
              "confident_learning": "confident learning", "top_loss": "top loss"}


def store() -> DecisionStore:
    return DecisionStore(curation_db())  # never cached: each call opens short connections


def act(action: str, item: dict, dataset, curator: str, run_id: str) -> None:
    """Button callback: record one decision on the frame or the whole capture, or undo."""
    try:
        if action == "undo":
            done = store().undo(curator=curator, dataset=dataset)
            msg = f"Undid decision #{done}." if done else "Nothing left to undo."
        else:
            capture = st.session_state.get("relabel_scope") == "whole capture"
            labels = {"accept": parse_labels(item["suggested"]),
                      "set": st.session_state.get(f"relabel_labels:{item['image_id']}")
                      }.get(action)
            item_id = item["seq_id"] if capture else item["image_id"]
            store().record(dataset, curator=curator, item_id=item_id, action=action,
                           scope="capture" if capture else "image", labels=labels or None,
                           reason=item["reason"], run_id=run_id)
            msg = f"{action} → {'capture' if capture else 'frame'} {components.code(item_id)}" + (
                f" = {esc(', '.join(labels))}" if labels else "")
        st.session_state["relabel_flash"] = ("success", msg)
    except DecisionError as exc:
        st.session_state["relabel_flash"] = ("error", esc(exc))


def curator_or_stop() -> str:
    """The curator's name (session, else URL); asks for it once and stops the page until given.

    A name, typed or from the URL, must pass ``data.curation.store.check_curator`` (printable,
    one line, bounded length); it is always shown as text (``components.esc``)."""
    curator = st.session_state.get("relabel_curator") or state.get_param("relabel_curator")
    problem = None
    if curator:
        try:
            curator = check_curator(curator)
        except DecisionError as exc:
            problem, curator = exc, None
            st.session_state.pop("relabel_curator", None)
            state.set_param("relabel_curator", None)
    if not curator:
        name = st.text_input("Your name", key="relabel_name",
                             help="recorded with every decision")
        st.button("Start curating", type="primary", key="relabel_start")
        if name.strip():  # Enter in the field or the button: both commit the name
            try:
                st.session_state["relabel_curator"] = check_curator(name)
                st.rerun()
            except DecisionError as exc:
                problem = exc
        if problem is not None:
            st.error(f"Not a usable name: {esc(problem)}", icon=":material/error:")
        st.info("Tell TrapLens who you are once; the name stays for this session and in the "
                "URL.")
        st.stop()
    st.session_state["relabel_curator"] = curator
    state.set_param("relabel_curator", curator)
    return curator


#: Session-state key of a selection sent to the queue (``send_selection``): a dict with
#: ``ids`` (image ids) and ``source``; the queue then holds exactly those images.
SELECTION = "relabel_selection"


def send_selection(image_ids, *, source: str) -> None:
    """Open the relabel queue on exactly ``image_ids`` (from the embedding map, say)."""
    st.session_state[SELECTION] = {"ids": [str(i) for i in image_ids], "source": source}
    st.switch_page("app_pages/relabel.py")


def _select(label: str, key: str, options: list[str]) -> str:
    return state.url_widget(st.selectbox, label, options, key=key, default=ANY)


def filtered(ev: "EvalSet", table: pd.DataFrame) -> pd.DataFrame:
    """The full ranking (``analysis.issues.issue_table`` of ``ev``) as the queue: a sent
    selection, else the reason / class / site / split filters (URL-backed selectboxes) through
    ``analysis.issues.issue_queue``. Adds ``site`` (the image's location as text)."""
    from analysis.issues import issue_queue, selection_queue

    sent = st.session_state.get(SELECTION)
    if sent:
        c1, c2 = st.columns([4, 1])
        c1.info(f"Reviewing the {len(sent['ids']):,} image(s) selected on {sent['source']}, "
                "suspects first.", icon=":material/filter_alt:")
        if not c2.button("Back to the full queue", key="relabel_clear_selection"):
            out = selection_queue(ev, table, sent["ids"], source=sent["source"])
            return out.assign(site=out["location"].astype("string").fillna("").to_numpy(str))
        st.session_state.pop(SELECTION, None)
    f1, f2, f3, f4 = st.columns(4)
    with f1:
        reason = _select("Reason", "relabel_reason",
                         [ANY] + sorted({k for ks in table["kinds"] for k in ks}))
    with f2:
        klass = _select("Class (given or suggested)", "relabel_class", [ANY] + list(ev.classes))
    with f3:
        site = _select("Site", "relabel_site", [ANY] + sorted(
            table["location"].dropna().astype(str).unique().tolist()))
    with f4:
        split = _select("Split", "relabel_split", [ANY] + sorted(
            ev.meta["split"].dropna().astype(str).unique().tolist()))
    out = issue_queue(ev, issues=table, kinds=None if reason == ANY else [reason],
                      classes=None if klass == ANY else [klass],
                      sites=None if site == ANY else [site],
                      split=None if split == ANY else split)
    return out.assign(site=out["location"].astype("string").fillna("").to_numpy(str))


def progress(cand: pd.DataFrame, curator: str) -> pd.DataFrame:
    """Show the latest decision's message and the progress (decided / remaining, and the time
    left at the curator's recent pace); return the undecided rest."""
    from analysis.issues import queue_progress

    decided = store().decided_ids()
    done = cand["image_id"].isin(decided).to_numpy() | cand["seq_id"].isin(decided).to_numpy()
    flash = st.session_state.pop("relabel_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    queue = cand[~done]
    history = store().decisions()
    mine = history.loc[history["curator"] == curator, "ts"] if len(history) else []
    pace = queue_progress(int(done.sum()), len(queue), mine)
    eta = ("" if pace["eta_seconds"] is None else
           f" · about **{_duration(pace['eta_seconds'])}** left at your recent pace "
           f"({pace['pace_per_hour']:.0f} an hour)")
    st.progress(done.sum() / max(len(cand), 1),
                text=f"**{int(done.sum())} of {len(cand)}** candidates decided · {len(queue)} "
                     f"to go{eta} · curating as **{esc(curator)}**")
    return queue


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 90:
        return f"{max(minutes, 1):.0f} min"
    return f"{minutes / 60:.1f} h"


def review(queue: pd.DataFrame, dataset, curator: str, view: "ViewState",
           full: "EvalSet") -> None:
    """The head of the queue: why it is there, the decision buttons, its capture, what's next."""
    item = queue.iloc[0].to_dict()
    st.subheader(f"{components.code(item['image_id'])} · score {item['score']:.2f}")
    st.markdown(" ".join(f":orange-badge[{esc(KIND_NAMES.get(k, k))}]" for k in item["kinds"]))
    st.markdown(f"**Why:** {esc(item['reason'])}  \n**Labelled:** "
                f"{esc(', '.join(item['given']))} · **Model suggests:** "
                f"{esc(item['suggested'])} · site {esc(item['site'])}")
    c1, c2 = st.columns([1, 2])
    c1.segmented_control("Apply to", ["this frame", "whole capture"], key="relabel_scope",
                         default="this frame", required=True)
    c2.multiselect("Labels (for Set labels)", dataset.classes,
                   key=f"relabel_labels:{item['image_id']}",
                   default=[c for c in parse_labels(item["suggested"]) or ()
                            if c in dataset.classes])
    args = (item, dataset, curator, view.run)
    cols = st.columns(len(ACTIONS) + 1)
    for col, (action, label, key, what) in zip(cols, ACTIONS):
        col.button(label, key=f"relabel_{action}", shortcut=key, on_click=act, help=what,
                   args=(action, *args), type="primary" if action == "accept" else "secondary")
    cols[-1].button("Undo", key="relabel_undo", shortcut="Z", on_click=act,
                    args=("undo", *args), icon=":material/undo:",
                    help="revert your latest decision")
    components.capture_strip(full, item["seq_id"], images_root=view.images_root,
                             highlight=item["image_id"])
    with st.expander(f"Up next ({len(queue) - 1})"):  # st.table: plain HTML, no canvas
        st.table(components.inert_table(
            queue.iloc[1:11][["image_id", "score", "given", "suggested", "reason"]]
            .set_index("image_id").round(2)))


def latest_decisions(curator: str) -> None:
    """The curator's ten latest decisions, newest first."""
    history = store().decisions()
    mine = history[history["curator"] == curator].tail(10).iloc[::-1]
    with st.expander(f"Your latest decisions ({len(mine)})", expanded=not mine.empty):
        if mine.empty:
            st.caption("None yet.")
        else:
            st.table(components.inert_table(
                mine.assign(ts=mine["ts"].dt.strftime("%H:%M:%S"),
                            labels_before=mine["labels_before"].map(", ".join),
                            labels_after=mine["labels_after"].map(", ".join))
                .set_index("id")[["ts", "scope", "item_id", "action", "labels_before",
                                  "labels_after"]]))


def export_section(dataset, view: "ViewState") -> None:
    """Download the corrected dataset in any export format (CamtrapDP with optional sites)."""
    with st.expander("Export the corrected dataset"):
        fmt = st.segmented_control("Format", list(FORMATS), key="relabel_fmt", default="coco",
                                   required=True, format_func=FORMAT_NAMES.get)
        extra: dict[str, Any] = {}
        if fmt == "camtrapdp" and view.run and st.toggle(
                f"Add run {view.run}'s predictions as machine observations",
                key="relabel_dp_run"):
            extra["run"] = view.run_path
        if fmt == "camtrapdp":
            sites = st.file_uploader(
                "Camera sites, for a complete package with deployments and media (CSV: "
                "location, latitude, longitude [, coordinateUncertainty]); without it, "
                "the deployments lack coordinates", type="csv", key="relabel_sites")
            if sites is not None:
                try:
                    extra["locations"] = loaders.sites_file(view.dataset_paths, sites.name,
                                                            sites.getvalue())
                except ExportError as exc:
                    st.error(f"Camera sites not used: {esc(exc)}", icon=":material/error:")
        name = download_name(dataset, fmt)
        st.download_button(f"Download {fmt} export", key="relabel_download", file_name=name,
                           data=lambda: export_bytes(dataset, store(), format=fmt, **extra),
                           icon=":material/download:",
                           mime="application/zip" if name.endswith(".zip") else None)
        st.caption("Same as `python -m data export --format " + fmt + "`; switch on *Apply "
                   "curated corrections* in the sidebar to score every page with your fixes.")
