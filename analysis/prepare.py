"""What the pages need once per run, computed once and memoised on the ``EvalSet``.

``prepare(ev)`` fills the set's memo (``EvalSet._cache``, through the functions that own each
entry) with the arg-max and confidence, the targets of both scoring policies, the capture codes
and index, the loss ranking key, the calibration inputs, the fitted temperature, the ecology's
capture layout and the capture-level set (mean of frame probabilities) with its own arg-max and
targets; and, through :func:`analysis.evalset.memoised`, the default view's tables of the pages
that would otherwise compute them on a first visit (the Overview's capture-level scores,
findings and worst sites, the Calibration page's reliability, ECE and certified thresholds).
The dashboard runs it in the background as soon as a run is loaded (``dashboard.loaders``),
so no page pays for it on its first visit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from analysis.calibration import ece, reliability
from analysis.certify import certify_for
from analysis.cooccurrence import rank_pairs
from analysis.decision import fit_run_temperature, layout_for
from analysis.evalset import EvalSet, aggregate_sequences, capture_codes, targets
from analysis.metrics import evaluate
from analysis.ranking import top_losses
from analysis.sequences import suspects
from analysis.slices import slice_table

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def _image_steps(ev: EvalSet) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("arg-max and confidence", lambda: ev.pred_prob),
        ("targets (label-set policy)", lambda: targets(ev, policy="set")),
        ("targets (primary policy)", lambda: targets(ev, policy="primary")),
        ("capture codes", lambda: capture_codes(ev)),
        ("calibration bins", lambda: reliability(ev, policy="set")),
    ]


def _calibration(ev: EvalSet, run_dir: str) -> None:
    """The fitted temperature and the Calibration page's reliability and ECE, before and
    after it (image level, 15 bins, label-set policy: the page's defaults)."""
    fit = fit_run_temperature(ev, ev, run_dir=run_dir)
    for t in (None, None if fit is None else fit["temperature"]):
        reliability(ev, n_bins=15, policy="set", temperature=t)
        ece(ev, n_bins=15, policy="set", temperature=t)


def prepare(ev: EvalSet, *, run_dir: str | None = None, progress: Progress | None = None
            ) -> EvalSet:
    """Compute and memoise on ``ev`` what every page needs once per run; returns ``ev``.

    Parameters
    ----------
    ev : EvalSet
        An image-level set (the unfiltered set of a run, as the dashboard loads it).
    run_dir : str, optional
        The run folder: the temperature is then fitted on its validation split (or read from
        its ``calibration.json``) with ECE before and after on the whole run
        (:func:`analysis.decision.fit_run_temperature`, as the Calibration page asks).
    progress : callable(fraction, step), optional
        Called before each step with the fraction done (0..1) and the step's name.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.evalset import evalset_from_arrays
    >>> ev = evalset_from_arrays(np.array([[0.9, 0.1], [0.2, 0.8]]), np.eye(2, dtype=bool))
    >>> prepare(ev) is ev and "pred" in ev._cache
    True
    """
    steps = _image_steps(ev) + [
        ("per-image losses", lambda: top_losses(ev, k=1)),
        ("capture aggregates", lambda: aggregate_sequences(ev, how="mean")),
        # the Overview's capture-level headline (loaders.evaluate's defaults)
        ("capture-level scores", lambda: evaluate(ev, policy="set", level="sequence")),
    ]
    if "seq_id" in ev.meta.columns:
        steps += [("capture rows", lambda: ev.capture_rows("")),
                  # the Overview's findings, as its cards ask for them
                  ("sequence-label suspects", lambda: suspects(
                      ev, empty_class="empty" if "empty" in ev.classes else None))]
    steps.append(("co-occurrence pairs",
                  lambda: rank_pairs(ev, policy="set", k=1, min_together=5)))
    if "location" in ev.meta.columns:
        steps.append(("worst sites", lambda: slice_table(ev, by="location", policy="set")))
    if {"location", "datetime"} <= set(ev.meta.columns):
        steps.append(("capture layout (ecology)", lambda: layout_for(ev)))
    if run_dir is not None and "split" in ev.meta.columns:
        steps.append(("fitted temperature, ECE before and after",
                      lambda: _calibration(ev, run_dir)))
    steps.append(("certified thresholds (95 %)",
                  lambda: certify_for(ev, target=0.95, level="image")))
    report = progress or (lambda fraction, step: None)
    n = len(steps) + 5  # the capture-level set's own steps follow
    for k, (name, step) in enumerate(steps):
        report(k / n, name)
        step()
    captures = aggregate_sequences(ev, how="mean")
    for k, (name, step) in enumerate(_image_steps(captures)):
        report((len(steps) + k) / n, f"captures: {name}")
        step()
    report(1.0, "ready")
    return ev
