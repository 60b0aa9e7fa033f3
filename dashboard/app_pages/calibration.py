"""Calibration & automation: can the model's confidence be trusted, and how much can it label?

Calibration: temperature scaling fitted on the run's validation split (stored beside the run as
``calibration.json``), ECE and reliability before and after. Automation: per-class thresholds
*certified* so that a 95 % lower confidence bound of precision (frames of one capture counted
once) reaches the target (``analysis.certify``), the default; the point-estimate thresholds
(``analysis.coverage.class_thresholds``) are one click away. 96.6 % is the accuracy of
Snapshot Serengeti's volunteer consensus (Norouzzadeh et al. 2018, PNAS).
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from analysis.calibration import ece, reliability
from analysis.certify import certify_for
from analysis.coverage import VOLUNTEER_ACCURACY, class_thresholds, coverage_curve
from analysis.decision import fit_run_temperature
from analysis.plots import certified_coverage_figure, coverage_figure, reliability_figure
from dashboard import components, loaders, state

TARGETS = {"0.9": "90 %", "0.95": "95 %", str(VOLUNTEER_ACCURACY): "96.6 % (volunteers)",
           "0.99": "99 %"}
VIEWS = {"certified": "Certified (95 % lower bound)", "point": "Point estimate"}
num = st.column_config.NumberColumn

view = state.current()
# once-per-run tables: prepared in the background after the run loads; show progress
components.wait_prepared(functools.partial(loaders.preparation, view))
ev_img = loaders.evalset(view)
noun = "captures" if view.level == "sequence" else "images"
st.title("Calibration & automation")
st.caption(f"Scored on {len(ev_img):,} images ({view.level} level, {view.policy} policy).")
components.stop_if_empty(ev_img)
manifest = loaders.read_manifest(str(view.run_path), loaders.stamp(view.run_path / "manifest.json"))
if manifest.get("partial_probabilities"):
    st.info("This run was imported with only its top classes' scores (SpeciesNet's top 5, a "
            "detector's decision, a top-k table); the rest of each image's probability was "
            "spread evenly over the other classes. Predictions and every count are exact; "
            "calibration and per-class thresholds below are approximate.",
            icon=":material/info:")

fit = loaders.cached_table(view, fit_run_temperature, loaders.full_evalset(view), ev_img,
                           run_dir=str(view.run_path))
use_t = fit is not None and st.toggle(
    "Use calibrated probabilities", key="cal_use_t",
    help="temperature scaling fitted on the validation split (arg-max unchanged)")
temperature = fit["temperature"] if use_t else None
ev = loaders.calibrated_evalset(view, temperature, level=view.level)

st.subheader("Fitted calibration")
if fit is None:
    st.info("The run has no validation split: no temperature can be fitted.")
else:
    cap = fit.get("capture_level") or {}
    c1, c2, c3 = st.columns(3)
    with c1:
        components.metric_card("Fitted temperature", fit["temperature"],
                               help=f"fitted on {fit['n_fit']:,} validation images; stored "
                                    f"in {components.esc(fit['stored'] or 'memory only')}")
    with c2:
        components.metric_card("ECE, images: before → after",
                               f"{fit['ece_before']:.4f} → {fit['ece_after']:.4f}")
    with c3:
        components.metric_card("ECE, captures: before → after",
                               f"{cap.get('ece_before', np.nan):.4f} → "
                               f"{cap.get('ece_after', np.nan):.4f}",
                               help="frame logits averaged per capture (Dussert et al.)")
n_bins = st.select_slider("Bins", [5, 10, 15, 20, 30], value=15, key="cal_bins")
ev_raw = loaders.evalset(view, level=view.level)
# Image level: the calibrated confidences are computed from the raw set (no calibrated copy;
# the default view's are prepared in the background). Captures average calibrated frames.
after = ((ev_raw, None if fit is None else fit["temperature"]) if view.level == "image" else
         (loaders.calibrated_evalset(view, None if fit is None else fit["temperature"],
                                     level=view.level), None))
cols = st.columns(2 if fit is not None else 1)
for col, (name, (e, t)) in zip(cols, (("before", (ev_raw, None)), ("after", after))):
    with col:
        bins = loaders.cached_table(view, reliability, e, n_bins=n_bins, policy=view.policy,
                                    temperature=t)
        overall = loaders.cached_table(view, ece, e, n_bins=n_bins, policy=view.policy,
                                       temperature=t)
        components.figure(reliability_figure(bins, ece=overall, title=f"Reliability {name}"),
                          f"reliability_{name}", config={"displayModeBar": False},
                          key=f"cal_rel_{name}")
if fit is not None:
    st.caption("ECE per class (one-vs-rest), before and after the fitted temperature")
    components.table(pd.DataFrame(fit["per_class"]), hide_index=True, height=240, column_config={
        "ece_before": num(format="%.4f"), "ece_after": num(format="%.4f")})

st.subheader("Automation")
left, right = st.columns(2)
with left:
    mode = state.url_widget(st.segmented_control, "Thresholds", list(VIEWS), key="cal_view",
                            default="certified", required=True, format_func=VIEWS.get)
with right:
    target = state.url_widget(st.segmented_control, "Target precision", list(TARGETS),
                              key="cal_target", default="0.95", required=True,
                              format_func=TARGETS.get,
                              help="96.6 % = volunteer consensus accuracy "
                                   "(Norouzzadeh et al. 2018)")
level = "capture" if view.level == "sequence" else "image"
cert = loaders.cached_table(view, certify_for, loaders.calibrated_evalset(view, temperature),
                            target=float(target), level=level)
if mode == "certified":
    c1, c2, c3 = st.columns(3)
    with c1:
        components.metric_card(f"Auto-labelled {noun}, certified", f"{cert['coverage']:.1%}")
    with c2:
        components.metric_card(f"Auto-labelled {noun}, point estimate",
                               f"{cert['coverage_point']:.1%}",
                               help="point estimates miss the target on new data about half "
                                    "the time")
    with c3:
        components.metric_card("Classes that cannot be certified", len(cert["uncertifiable"]))
    per_class = pd.DataFrame(cert["per_class"])
    per_class = per_class[per_class["n_predicted"] > 0]
    components.figure(certified_coverage_figure(per_class), "certified_coverage",
                      config={"displayModeBar": False})
    components.table(per_class, hide_index=True, column_order=[
        "class", "threshold", "precision_lower_bound", "precision", "coverage", "n_accepted",
        "n_predicted", "point_threshold", "point_coverage", "captures_needed"], column_config={
        "threshold": num("certified threshold", format="%.3f", help="empty: not certifiable"),
        "precision_lower_bound": num("precision 95 % lower bound", format="%.3f"),
        "precision": num(format="%.3f"), "point_threshold": num(format="%.3f"),
        "coverage": num("coverage (certified)", format="percent"),
        "point_coverage": num("coverage (point)", format="percent"),
        "captures_needed": num(help="labelled captures at the observed precision the bound "
                                    "would need; empty: the model must improve first")})
    if cert["uncertifiable"]:
        st.caption(f"Not certifiable at {TARGETS[target]}: "
                   f"{components.esc(', '.join(cert['uncertifiable']))} "
                   "(every prediction of these classes goes to a person).")
else:
    curve = loaders.cached_table(view, coverage_curve, ev, policy=view.policy)
    components.figure(coverage_figure(curve, targets=[float(target)]), "coverage",
                      config={"displayModeBar": False})
    th = loaders.cached_table(view, class_thresholds, ev, target_precision=float(target),
                              policy=view.policy)
    tot = th.attrs
    st.markdown(f"With point-estimate thresholds, **{tot['n_accepted'] / max(tot['n'], 1):.1%}"
                f"** of the {noun} could be labelled by the model at {TARGETS[target]} "
                f"precision; **{tot['n_left']:,}** still need a person.")
    components.table(th[th["n_predicted"] > 0].sort_values("n_left", ascending=False),
                 hide_index=True, column_config={
                     "threshold": num(format="%.3f", help="NaN: target unreachable"),
                     "precision": num(format="%.3f"), "coverage": num(format="percent")})
