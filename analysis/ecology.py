"""Ecology impact: what the model's errors do to captures, abundance, occupancy and activity.

Per species, the ecologist's usual summaries are computed twice, once from the labels and once
from the model, and compared:

captures (independent detections)
    A capture (``seq_id``) is one detection event; it counts for a species when any of its
    frames carries the species (labels: the frames' label sets; model: the frames' arg-max, or,
    in the "model where certified, people elsewhere" variant, the arg-max on accepted frames
    and the labels on the others).
relative abundance index (RAI)
    Captures per 100 camera-days at each site. Effort is approximated by each site's span
    from its first to its last capture time in the evaluated set (the source files hold no
    deployment dates, and a camera may have been down in between): ``camera_days = (last -
    first) / 1 day``. A site spanning less than a day has no RAI (NaN).
naive occupancy
    Share of the evaluated sites with at least one capture of the species.
activity overlap
    The coefficient of overlapping (Ridout & Linkie 2009) between time-of-day kernel densities
    of the labelled and of the predicted captures (capture start times, radians on the 24 h
    circle). Von Mises kernels with the concentration of Taylor (2008) as computed by the R
    package ``overlap`` (``getBandWidth``, kmax 3), divided by 0.8 for Δ1 and by 1 for Δ4;
    Δ1 = ∫ min(f, g) when the smaller sample has fewer than 75 captures, Δ4 otherwise.
    Densities are evaluated on ``n_grid`` points of the circle after binning the times there
    (FFT convolution; sample times move by at most half a bin, 2.8 min at 256; the
    ``overlap`` package itself evaluates on 128 points).

Intervals come from a Poisson capture bootstrap (every capture weighted by an independent
Poisson(1) draw, as in :mod:`analysis.metrics`). Captures of one species fall into three
disjoint kinds per site and time bin (labels only, model only, both), and a sum of
independent Poisson(1) weights over m captures is Poisson(m), so each species' resampled
counts are drawn per (site or time bin, kind) cell: exact for the Poisson bootstrap and
independent of the number of images. Percentile intervals, fixed seed, except for the
overlap, whose interval is the basic bootstrap interval (``2Δ - q_hi, 2Δ - q_lo``, clipped
to [0, 1]; the ``basic0`` interval that Meredith & Ridout's ``overlap`` package recommends):
Δ is bounded by 1 and biased low, so its percentile interval can lie wholly below it.

A species is flagged when its largest bias exceeds ``tolerance`` (5 %): the relative
difference in captures, the relative difference in naive occupancy, or ``1 - overlap``.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import special

log = logging.getLogger(__name__)

N_GRID = 256
DAY_NS = 86_400 * 10**9
EFFORT_NOTE = ("camera-days approximated by each site's span from first to last capture time "
               "in the evaluated set (no deployment dates in the source)")
_KINDS = 3  # 0: labels only, 1: model only, 2: both


class EcologyError(ValueError):
    """Inputs of the ecology comparison do not line up (lengths, classes, times)."""


# --------------------------------------------------------------------------- circular KDE

_KAPPA_GRID = np.geomspace(1e-4, 500.0, 4096)


def _ratio_table(kmax: int) -> np.ndarray:
    """``I_k(κ) / I_0(κ)`` for k = 1..kmax on :data:`_KAPPA_GRID` (increasing in κ)."""
    return np.stack([special.ive(k, _KAPPA_GRID) / special.ive(0, _KAPPA_GRID)
                     for k in range(1, kmax + 1)])


_RATIOS = _ratio_table(3)


def concentration(hist: np.ndarray, *, kmax: int = 3) -> np.ndarray:
    """Kernel concentration (the ``overlap`` package's bandwidth) of binned circular data.

    For k = 1..kmax the von Mises concentration whose k-th trigonometric moment equals the
    data's (``I_k(κ)/I_0(κ) = ρ_k`` about the circular mean) is found on [1e-4, 500]
    (inverting a 4096-point table of the increasing ratio, log-spaced in κ); κ̂ is the
    largest, and the kernel concentration is Taylor's (2008) rule
    ``(3 n κ̂² I_2(2κ̂) / (4 √π I_0(κ̂)²))^(2/5)``.

    Parameters
    ----------
    hist : ndarray, shape (..., G)
        Counts (or weights) on G equal bins of the circle; the bin centres stand for the times.
    kmax : int

    Returns
    -------
    ndarray, shape (...)
        NaN where no moment has a root (e.g. all times equal) or the sample is empty.
    """
    hist = np.asarray(hist, dtype=np.float64)
    ratios = _RATIOS if kmax <= len(_RATIOS) else _ratio_table(kmax)
    g = hist.shape[-1]
    theta = (np.arange(g) + 0.5) * 2 * np.pi / g
    n = hist.sum(axis=-1)
    log_grid = np.log(_KAPPA_GRID)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.arctan2(hist @ np.sin(theta), hist @ np.cos(theta))
        kappa_hat = np.zeros(n.shape)
        for k in range(1, kmax + 1):
            # sum h sin(k(θ - μ)) and sum h cos(k(θ - μ)) from two products with the grid
            s_k, c_k = hist @ np.sin(k * theta), hist @ np.cos(k * theta)
            rho = np.hypot(np.cos(k * mu) * s_k - np.sin(k * mu) * c_k,
                           np.cos(k * mu) * c_k + np.sin(k * mu) * s_k) / n
            table = ratios[k - 1]
            ok = (rho >= table[0]) & (rho <= table[-1])
            root = np.exp(np.interp(np.where(ok, rho, table[0]), table, log_grid))
            kappa_hat = np.maximum(kappa_hat, np.where(ok, root, 0.0))
        ratio = special.ive(2, 2 * kappa_hat) / special.ive(0, kappa_hat) ** 2
        nu = (3 * n * kappa_hat ** 2 * ratio / (4 * np.sqrt(np.pi))) ** 0.4
    return np.where((kappa_hat > 0) & (n > 0), nu, np.nan)


def _kernel_fft(kappa: np.ndarray, g: int) -> np.ndarray:
    delta = (np.cos(np.arange(g) * 2 * np.pi / g) - 1).astype(np.float32)
    kappa = np.asarray(kappa, dtype=np.float64)[..., None]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        kern = np.exp(kappa.astype(np.float32) * delta)
        kern *= (1 / (2 * np.pi * special.ive(0, kappa))).astype(np.float32)
    return sfft.rfft(kern, axis=-1)


def _hist_fft(hist: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sfft.rfft((hist / hist.sum(axis=-1, keepdims=True)).astype(np.float32),
                         axis=-1)


def _kde_from_fft(hist_fft: np.ndarray, kappa: np.ndarray, g: int) -> np.ndarray:
    dens = sfft.irfft(hist_fft * _kernel_fft(kappa, g), n=g, axis=-1).astype(np.float64)
    return np.maximum(dens, 0.0)


def kde_on_grid(hist: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Von Mises kernel density (per radian) at the G bin centres of binned circular data.

    Parameters
    ----------
    hist : ndarray, shape (..., G)
    kappa : ndarray, shape (...)
        Kernel concentration per histogram.

    Returns
    -------
    ndarray, shape (..., G)
        Integrates to 1 over the circle (NaN rows where ``kappa`` is NaN or ``hist`` empty).
    """
    hist = np.asarray(hist, dtype=np.float64)
    return _kde_from_fft(_hist_fft(hist), kappa, hist.shape[-1])


def density_overlap(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Δ = ∫ min(f, g) over the circle for densities on an equal grid of the circle.

    Examples
    --------
    >>> flat = np.full(1000, 1 / (2 * np.pi))
    >>> round(float(density_overlap(flat, flat)), 9), float(density_overlap(flat, 0 * flat))
    (1.0, 0.0)
    """
    f = np.asarray(f, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    return np.minimum(f, g).mean(axis=-1) * 2 * np.pi


def _overlap_hist(h1: np.ndarray, h2: np.ndarray, use_d4: np.ndarray) -> np.ndarray:
    """Δ1 or Δ4 (per row, as ``use_d4`` says) between two binned samples, shape (..., G);
    each row computes only the estimator it uses."""
    shape = np.broadcast_shapes(h1.shape, h2.shape)
    a = np.broadcast_to(h1, shape).reshape(-1, shape[-1])
    b = np.broadcast_to(h2, shape).reshape(-1, shape[-1])
    which = np.broadcast_to(use_d4, shape[:-1]).reshape(-1)
    out = np.empty(len(a))
    for est in (False, True):
        rows = np.flatnonzero(which == est)
        if len(rows):
            out[rows] = _overlap_rows(a[rows], b[rows], d4=est)
    return out.reshape(shape[:-1])


def _overlap_rows(h1: np.ndarray, h2: np.ndarray, *, d4: bool) -> np.ndarray:
    """Δ4 (``d4``) or Δ1 of each row pair of (M, G) histograms."""
    nu1, nu2 = concentration(h1), concentration(h2)
    n_grid = h1.shape[-1]
    t1, t2 = _hist_fft(h1), _hist_fft(h2)
    if not d4:
        est = density_overlap(_kde_from_fft(t1, nu1 / 0.8, n_grid),
                              _kde_from_fft(t2, nu2 / 0.8, n_grid))
    else:
        f, g = _kde_from_fft(t1, nu1, n_grid), _kde_from_fft(t2, nu2, n_grid)
        with np.errstate(invalid="ignore", divide="ignore"):
            w1 = h1 / h1.sum(axis=-1, keepdims=True)
            w2 = h2 / h2.sum(axis=-1, keepdims=True)
            r12 = np.where(h1 > 0, np.minimum(1.0, g / f), 0.0)
            r21 = np.where(h2 > 0, np.minimum(1.0, f / g), 0.0)
            est = 0.5 * ((w1 * r12).sum(-1) + (w2 * r21).sum(-1))
    # Identical samples overlap fully, even where no bandwidth exists (all times equal).
    same = np.all(h1 == h2, axis=-1) & (h1.sum(axis=-1) > 0)
    return np.where(same, 1.0, est)


def time_bins(times_rad: np.ndarray, n_grid: int = N_GRID) -> np.ndarray:
    """Bin index on the circle of each time in radians."""
    t = np.mod(np.asarray(times_rad, dtype=np.float64), 2 * np.pi)
    return np.minimum((t * n_grid / (2 * np.pi)).astype(np.int64), n_grid - 1)


def overlap_estimate(a: np.ndarray, b: np.ndarray, *, estimator: str = "auto",
                     n_grid: int = N_GRID) -> tuple[float, str]:
    """Coefficient of overlapping of two samples of times of day (radians).

    Parameters
    ----------
    a, b : ndarray of float
        Times in radians (0 .. 2π = 24 h).
    estimator : {"auto", "dhat1", "dhat4"}
        ``auto``: Δ1 when the smaller sample has fewer than 75 times, else Δ4 (Ridout &
        Linkie 2009).
    n_grid : int

    Returns
    -------
    (float, str)
        The estimate (NaN for an empty or degenerate sample) and the estimator used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.vonmises(1.0, 2.0, 500) % (2 * np.pi)
    >>> est, kind = overlap_estimate(x, x)
    >>> round(est, 6), kind
    (1.0, 'dhat4')
    """
    if estimator not in ("auto", "dhat1", "dhat4"):
        raise EcologyError(f"estimator must be 'auto', 'dhat1' or 'dhat4', got {estimator!r}")
    h1 = np.bincount(time_bins(a, n_grid), minlength=n_grid).astype(np.float64)
    h2 = np.bincount(time_bins(b, n_grid), minlength=n_grid).astype(np.float64)
    kind = estimator if estimator != "auto" else (
        "dhat1" if min(len(a), len(b)) < 75 else "dhat4")
    return float(_overlap_hist(h1, h2, np.array(kind == "dhat4"))), kind


# --------------------------------------------------------------------------- captures

@dataclass
class CaptureLayout:
    """What the comparison needs of a run's images apart from the model: computed once per
    evaluated set (:func:`capture_layout`) and shared by every :func:`capture_table` of it
    (arg-max, "model where certified", other targets).

    Attributes
    ----------
    n : int
        Images (frames).
    n_classes : int
    order : ndarray of int, shape (n,), or None
        Frames in capture order (None: they already are, as :func:`capture_codes` numbers
        contiguous captures).
    starts : ndarray of int, shape (G,)
        Position in that order of each capture's first frame.
    site : ndarray of int, shape (G,)
        Site code per capture (index into ``site_names``; -1 unknown).
    site_names : list
    camera_days : ndarray of float, shape (S,)
        Effort per site (see the module docstring).
    time_bin : ndarray of int, shape (G,)
        Time-of-day bin of the capture's start (-1 when unknown).
    frame_bits : ndarray of uint64, shape (n, W)
        Each frame's label set as a bit mask (class k: bit ``k % 64`` of word ``k // 64``).
    label_bits : ndarray of uint64, shape (G, W)
        Each capture's label set (the OR of its frames').
    n_grid : int
    """

    n: int
    n_classes: int
    order: np.ndarray | None
    starts: np.ndarray
    site: np.ndarray
    site_names: list
    camera_days: np.ndarray
    time_bin: np.ndarray
    frame_bits: np.ndarray
    label_bits: np.ndarray
    n_grid: int = N_GRID


@dataclass
class CaptureTable:
    """Captures of the evaluated images, with species detected by labels and by the model.

    Attributes
    ----------
    classes : list of str
    site, site_names, camera_days, time_bin
        As in :class:`CaptureLayout`.
    pair_capture, pair_class : ndarray of int, shape (P,)
        Every (capture, class) detected by labels or model.
    pair_kind : ndarray of int8, shape (P,)
        0 labels only, 1 model only, 2 both.
    n_grid : int
    """

    classes: list[str]
    site: np.ndarray
    site_names: list
    camera_days: np.ndarray
    time_bin: np.ndarray
    pair_capture: np.ndarray
    pair_class: np.ndarray
    pair_kind: np.ndarray
    n_grid: int = N_GRID

    def __len__(self) -> int:
        return len(self.site)


def _class_bits(values: np.ndarray, c: int) -> np.ndarray:
    """Per row, the set of its classes as a bit mask: shape (n, W) uint64, W = ceil(C / 64);
    class k is bit ``k % 64`` of word ``k // 64``."""
    words = -(-c // 64)
    n = len(values)
    if values.ndim == 2:  # label sets: pack 8 classes per byte, 8 bytes per word
        packed = np.packbits(values.astype(bool, copy=False), axis=1, bitorder="little")
        if packed.shape[1] != words * 8:
            packed = np.concatenate(
                [packed, np.zeros((n, words * 8 - packed.shape[1]), np.uint8)], axis=1)
        return np.ascontiguousarray(packed).view(np.uint64).reshape(n, words)
    v = values.astype(np.uint64)
    if words == 1:  # class k is bit k
        return np.left_shift(np.uint64(1), v, out=v).reshape(n, 1)
    one = np.left_shift(np.uint64(1), v % np.uint64(64))
    out = np.zeros((n, words), np.uint64)
    out[np.arange(n), (v // np.uint64(64)).astype(np.int64)] = one
    return out


def _bit_index(powers: np.ndarray) -> np.ndarray:
    """Bit position of each power of two (uint64): the exponent field of its float64, exact
    for every power of two (and ~20x faster than ``log2``).

    >>> _bit_index(np.array([1, 2, 2**40, 2**63], np.uint64)).tolist()
    [0, 1, 40, 63]
    """
    return (powers.astype(np.float64).view(np.int64) >> 52) - 1023


def _bit_pairs(lab: np.ndarray, mod: np.ndarray) -> tuple[np.ndarray, ...]:
    """(capture, class, kind) of every set bit of ``lab | mod`` (shape (G, W) uint64); kind 0
    labels only, 1 model only, 2 both.

    Most captures hold one class that labels and model agree on: those are read in one pass
    (``lab == mod`` with a single bit); the rest peel their lowest set bit per pass, as many
    passes as the most classes one of them holds."""
    caps, ks, kinds = [], [], []
    one = np.uint64(1)
    for w in range(lab.shape[1]):
        lw, mw = lab[:, w], mod[:, w]
        x = lw | mw
        simple = lw == mw
        simple &= (x & (x - one)) == 0  # one bit (x == 0 rows are dropped below)
        simple &= x != 0
        rows = np.flatnonzero(simple)
        caps.append(rows)
        ks.append(_bit_index(x[rows]) + 64 * w)
        kinds.append(np.full(len(rows), 2, np.int8))
        rows = np.flatnonzero(~simple & (x != 0))
        x, lw, mw = x[rows], lw[rows], mw[rows]
        while len(rows):
            low = x & (~x + one)
            ks.append(_bit_index(low) + 64 * w)
            caps.append(rows)
            kinds.append(((lw & low) != 0).astype(np.int8)
                         + 2 * ((mw & low) != 0).astype(np.int8) - 1)
            x = x ^ low
            left = x != 0
            rows, x, lw, mw = rows[left], x[left], lw[left], mw[left]
    if not caps:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8)
    # in peeling order (not sorted: every consumer counts them with bincount)
    return np.concatenate(caps), np.concatenate(ks), np.concatenate(kinds)


def _check_rows(n: int, c: int, **arrays) -> None:
    for name, arr in arrays.items():
        if arr is None:
            continue
        if len(arr) != n:
            raise EcologyError(f"ecology: {name} has {len(arr)} rows, labels {n}")
        if name not in ("labels", "model"):
            continue
        arr = np.asarray(arr)
        if arr.ndim == 2 and arr.shape[1] != c:
            raise EcologyError(f"ecology: {name} has {arr.shape[1]} columns for {c} classes")
        if arr.ndim == 1 and n and (arr.min() < 0 or arr.max() >= c):
            bad = int(np.flatnonzero((arr < 0) | (arr >= c))[0])
            raise EcologyError(f"ecology: {name} row {bad}: class index {arr[bad]} outside "
                               f"0..{c - 1}")


def capture_layout(*, captures, sites, times, labels: np.ndarray, n_classes: int,
                   n_grid: int = N_GRID) -> CaptureLayout:
    """Group images into captures: each capture's site, start time bin and label set, and
    each site's effort. Independent of the model: compute once per evaluated set.

    Parameters
    ----------
    captures : array-like, shape (n,)
        Capture (``seq_id``) per image; frames need not be contiguous.
    sites : array-like, shape (n,)
        Camera site per image (missing: unknown; such captures count, but for no site).
    times : array-like of datetime64, shape (n,)
        Camera time per image (NaT allowed).
    labels : ndarray, shape (n,) of int or (n, C) of bool
        Label per image (or label sets).
    n_classes : int
    n_grid : int
        Bins of the 24 h circle.

    Returns
    -------
    CaptureLayout
    """
    labels = np.asarray(labels)
    n, c = len(labels), n_classes
    _check_rows(n, c, labels=labels, captures=captures, sites=sites, times=times)
    cap = np.asarray(captures)
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    # Frames grouped by capture (the usual case: integer codes in order) need no sort and no
    # copy: per-capture reductions are one reduceat each over the frames as they are.
    if cap.dtype.kind in "iu" and (n < 2 or np.all(cap[1:] >= cap[:-1])):
        head = np.empty(n, bool)
        head[:1] = True
        np.not_equal(cap[1:], cap[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        order = None
    else:
        cap, uniq = pd.factorize(pd.Series(cap), use_na_sentinel=False)
        order = np.argsort(cap, kind="stable")
        starts = np.r_[0, np.cumsum(np.bincount(cap, minlength=len(uniq)))[:-1]] if n \
            else order
    in_order = slice(None) if order is None else order
    site_codes, site_names = pd.factorize(pd.Series(sites), use_na_sentinel=True)
    t = np.asarray(times)
    if t.dtype != np.dtype("datetime64[ns]"):
        t = pd.to_datetime(pd.Series(times)).to_numpy("datetime64[ns]")
    t = t.view(np.int64)[in_order]  # NaT is the smallest int64
    if n:
        nat = t == small
        start = np.minimum.reduceat(np.where(nat, big, t) if nat.any() else t, starts)
        end = np.maximum.reduceat(t, starts)
        first = starts if order is None else order[starts]
    else:
        start = end = first = np.zeros(0, np.int64)
    site = site_codes[first].astype(np.int64)
    known_t = end >= start
    s = len(site_names)
    ok = known_t & (site >= 0)
    s_start = np.full(s, big)
    s_end = np.full(s, small)
    np.minimum.at(s_start, site[ok], start[ok])
    np.maximum.at(s_end, site[ok], end[ok])
    camera_days = np.where(s_end >= s_start, (s_end - s_start) / DAY_NS, 0.0)
    tod = np.mod(start, DAY_NS) / DAY_NS * 2 * np.pi
    time_bin = np.where(known_t, time_bins(tod, n_grid), -1)
    frame_bits = _class_bits(labels, c)
    return CaptureLayout(n=n, n_classes=c, order=order, starts=starts, site=site,
                         site_names=list(site_names), camera_days=camera_days,
                         time_bin=time_bin, frame_bits=frame_bits,
                         label_bits=_capture_bits(frame_bits, order, starts),
                         n_grid=n_grid)


def _capture_bits(frame_bits: np.ndarray, order: np.ndarray | None, starts: np.ndarray
                  ) -> np.ndarray:
    """Each capture's class set: the OR of its frames' masks (one reduceat, capture order)."""
    if not len(starts):
        return np.zeros((0, frame_bits.shape[1]), np.uint64)
    return np.bitwise_or.reduceat(frame_bits if order is None else frame_bits[order], starts,
                                  axis=0)


def capture_table(*, captures=None, sites=None, times=None, labels: np.ndarray | None = None,
                  model: np.ndarray, classes: list[str], accept: np.ndarray | None = None,
                  n_grid: int = N_GRID, layout: CaptureLayout | None = None) -> CaptureTable:
    """Group images into captures and record which species labels and model detect.

    Parameters
    ----------
    captures, sites, times, labels
        As in :func:`capture_layout`; not needed when ``layout`` is given.
    model : ndarray, shape (n,) of int or (n, C) of bool
        The model's class per image (arg-max), or its label sets.
    classes : list of str, length C
    accept : ndarray of bool, shape (n,), optional
        "Model where certified, people elsewhere": frames with ``accept`` take the model's
        species, the others keep their labels.
    n_grid : int
        Bins of the 24 h circle (ignored with ``layout``).
    layout : CaptureLayout, optional
        :func:`capture_layout` of these images, computed once and reused.

    Returns
    -------
    CaptureTable
    """
    c = len(classes)
    if layout is None:
        if any(x is None for x in (captures, sites, times, labels)):
            raise EcologyError("ecology: give captures, sites, times and labels, or a layout")
        layout = capture_layout(captures=captures, sites=sites, times=times, labels=labels,
                                n_classes=c, n_grid=n_grid)
    elif layout.n_classes != c:
        raise EcologyError(f"ecology: the capture layout has {layout.n_classes} classes, "
                           f"the model {c}")
    model = np.asarray(model)
    _check_rows(layout.n, c, model=model, accept=accept)
    mod_bits = _class_bits(model, c)
    if accept is not None:
        accept = np.asarray(accept, dtype=bool)
        mod_bits = np.where(accept[:, None], mod_bits, layout.frame_bits)
    g, k, kind = _bit_pairs(layout.label_bits,
                            _capture_bits(mod_bits, layout.order, layout.starts))
    return CaptureTable(classes=list(classes), site=layout.site, site_names=layout.site_names,
                        camera_days=layout.camera_days, time_bin=layout.time_bin,
                        pair_capture=g, pair_class=k, pair_kind=kind, n_grid=layout.n_grid)


def _cells(table: CaptureTable, axis_codes: np.ndarray, size: int) -> np.ndarray:
    """Counts of captures per (class, code, kind): shape (C, size, 3); negative codes dropped."""
    code = axis_codes[table.pair_capture]
    keep = code >= 0
    k, code, kind = table.pair_class[keep], code[keep], table.pair_kind[keep]
    c = len(table.classes)
    flat = (k * size + code) * _KINDS + kind
    return np.bincount(flat, minlength=c * size * _KINDS).reshape(c, size, _KINDS)


_NORMAL_FROM = 100  # Poisson(λ) drawn as round(N(λ, λ)) from here on (skewness <= 0.1;
#                    every statistic sums many cells, so the tails are not affected)
_TABLE_BITS = 16    # small counts: inverse-CDF table look-up on 2**16 equal quantile steps


@functools.lru_cache(maxsize=1)
def _poisson_quantiles() -> np.ndarray:
    """``Q[λ, j]``: the Poisson(λ) quantile at ``(j + 0.5) / 2**16`` for λ = 0 .. 99, int16.

    A draw is ``Q[λ, U]`` with U uniform on 0 .. 2**16 - 1: the exact inverse-CDF draw of a
    uniform rounded to 1/65536 (CDF error below 1e-5), several times faster than
    ``Generator.poisson`` (whose small-λ sampler loops per draw)."""
    m = 1 << _TABLE_BITS
    u = (np.arange(m) + 0.5) / m
    lam = np.arange(_NORMAL_FROM, dtype=np.float64)
    k = np.arange(int(_NORMAL_FROM + 12 * np.sqrt(_NORMAL_FROM) + 20))
    cdf = special.pdtr(k[None, :], lam[:, None])  # P(X <= k), shape (λ, K)
    out = np.empty((len(lam), m), np.int16)
    for i in range(len(lam)):
        out[i] = np.searchsorted(cdf[i], u, side="left")
    return out


def _poisson(cells: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson(count) draws per cell and resample: shape cells.shape + (R,), zeros kept zero;
    counts below 100 by table look-up, larger ones by the normal approximation."""
    out = np.zeros(cells.shape + (n_resamples,), np.int32)
    flat = out.reshape(-1, n_resamples)
    lam = cells.reshape(-1)
    small = np.flatnonzero((lam > 0) & (lam < _NORMAL_FROM))
    large = np.flatnonzero(lam >= _NORMAL_FROM)
    if len(small):
        small = small[np.argsort(lam[small], kind="stable")]  # look-ups stay in one λ's row
        table = _poisson_quantiles()
        u = rng.integers(0, 1 << _TABLE_BITS, size=(len(small), n_resamples), dtype=np.int32)
        u += (lam[small, None] << _TABLE_BITS).astype(np.int32)
        flat[small] = table.reshape(-1)[u]
    if len(large):
        z = rng.standard_normal((len(large), n_resamples), dtype=np.float32)
        mu = lam[large, None].astype(np.float32)
        flat[large] = np.maximum(np.rint(mu + np.sqrt(mu) * z), 0).astype(np.int32)
    return out


def _interval(samples: np.ndarray, level: float) -> np.ndarray:
    """Percentile ``[lo, hi]`` over the last axis ignoring NaN resamples (NaN when all are);
    one sort instead of ``np.nanquantile``'s per-row loop."""
    a = (1 - level) / 2
    srt = np.sort(samples, axis=-1)  # NaN last
    m = (~np.isnan(srt)).sum(axis=-1)
    out = np.full(srt.shape[:-1] + (2,), np.nan)
    for j, q in enumerate((a, 1 - a)):
        pos = q * np.maximum(m - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
        v_lo = np.take_along_axis(srt, lo[..., None], axis=-1)[..., 0]
        v_hi = np.take_along_axis(srt, hi[..., None], axis=-1)[..., 0]
        out[..., j] = np.where(m > 0, v_lo + (pos - lo) * (v_hi - v_lo), np.nan)
    return out


def _pair(x) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in x]


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def ecology_summary(table: CaptureTable, *, species: list[str] | None = None,
                    site_species: str | None = None, n_resamples: int = 200,
                    level: float = 0.95, tolerance: float = 0.05, seed: int = 0) -> dict:
    """Per-species comparison of labels and model, with capture-bootstrap intervals.

    Parameters
    ----------
    table : CaptureTable
        From :func:`capture_table`.
    species : list of str, optional
        Classes to report (default: every class except ``empty``, ``human``, ``vehicle``
        and ``blank``).
    site_species : str, optional
        Species of the per-site table (default: the top-ranked species).
    n_resamples : int
        Poisson bootstrap resamples (0: intervals ``[None, None]``).
    level : float
    tolerance : float
        Bias above which a species is flagged.
    seed : int

    Returns
    -------
    dict
        ``per_species``: list, most biased first, of ``{species, captures_labels,
        captures_model, captures_bias, captures_bias_ci, rai_labels, rai_model,
        occupancy_labels, occupancy_model, occupancy_diff, occupancy_diff_ci, overlap,
        overlap_ci, overlap_estimator, bias, flagged}`` (occupancy as a share of sites, RAI
        over all sites' camera-days); ``per_site``: ``{species, rows: [{site, camera_days,
        captures_labels, captures_model, rai_labels, rai_model, rai_diff, rai_diff_ci}]}``;
        ``n_captures``, ``n_sites``, ``camera_days``, ``effort_note``.
    """
    c = len(table.classes)
    not_species = {"empty", "human", "vehicle", "blank"}
    names = species if species is not None else [x for x in table.classes
                                                 if x.lower() not in not_species]
    idx = np.array([table.classes.index(x) if x in table.classes else -1 for x in names],
                   dtype=np.int64)
    if (idx < 0).any():
        bad = names[int(np.flatnonzero(idx < 0)[0])]
        raise EcologyError(f"ecology: unknown species {bad!r}; classes: {table.classes}")
    s = len(table.site_names)
    site_code = np.where(table.site >= 0, table.site, s)  # unknown site: an extra column
    by_site = _cells(table, site_code, s + 1)[idx]          # (K, S+1, 3)
    by_time = _cells(table, table.time_bin, table.n_grid)[idx]  # (K, G, 3)
    rng = np.random.default_rng(seed)
    r = n_resamples
    days = table.camera_days
    total_days = days.sum()
    sites_present = np.bincount(table.site[table.site >= 0], minlength=s) > 0
    n_sites = int(sites_present.sum())

    def stats(cells_site):  # (K, S+1, 3[, R]) -> captures L, M; occupancy L, M
        lab = cells_site[:, :, 0] + cells_site[:, :, 2]
        mod = cells_site[:, :, 1] + cells_site[:, :, 2]
        occ_l = (lab[:, :s] > 0).sum(axis=1) / max(n_sites, 1)
        occ_m = (mod[:, :s] > 0).sum(axis=1) / max(n_sites, 1)
        return lab, mod, lab.sum(axis=1), mod.sum(axis=1), occ_l, occ_m

    lab, mod, cap_l, cap_m, occ_l, occ_m = stats(by_site)
    hist_l = by_time[:, :, 0] + by_time[:, :, 2]
    hist_m = by_time[:, :, 1] + by_time[:, :, 2]
    n_l, n_m = hist_l.sum(axis=1), hist_m.sum(axis=1)
    use_d4 = np.minimum(n_l, n_m) >= 75
    ov = _overlap_hist(hist_l.astype(float), hist_m.astype(float), use_d4)
    with np.errstate(invalid="ignore", divide="ignore"):
        cap_bias = np.where(cap_l > 0, (cap_m - cap_l) / cap_l, np.nan)
        occ_diff = occ_m - occ_l
        occ_bias = np.where(occ_l > 0, occ_diff / occ_l, np.nan)
    nan2 = np.full((len(idx), 2), np.nan)
    cap_ci, occ_ci, ov_ci = nan2, nan2, nan2
    site_ci = None
    if r:
        w_site = _poisson(by_site, r, rng)                  # (K, S+1, 3, R)
        lab_r, mod_r, cl_r, cm_r, ol_r, om_r = stats(w_site)
        with np.errstate(invalid="ignore", divide="ignore"):
            cap_ci = _interval(np.where(cl_r > 0, (cm_r - cl_r) / cl_r, np.nan), level)
        occ_ci = _interval(om_r - ol_r, level)
        with np.errstate(invalid="ignore", divide="ignore"):
            site_ci = _interval((mod_r[:, :s] - lab_r[:, :s]) / days[None, :, None] * 100
                                * np.where(days > 0, 1, np.nan)[None, :, None], level)
        del w_site, lab_r, mod_r
        w_time = _poisson(by_time, r, rng)                  # (K, G, 3, R)
        hl = np.moveaxis(w_time[:, :, 0] + w_time[:, :, 2], -1, 1).astype(float)  # (K, R, G)
        hm = np.moveaxis(w_time[:, :, 1] + w_time[:, :, 2], -1, 1).astype(float)
        del w_time
        # Basic ("basic0") interval, as the overlap package recommends: Δ is bounded by 1
        # and biased low, and its resamples are biased low again, so the percentile
        # interval would sit below the estimate; reflecting it about Δ corrects the bias.
        q = _interval(_overlap_hist(hl, hm, use_d4[:, None]), level)
        ov_ci = np.clip(2 * ov[:, None] - q[:, ::-1], 0.0, 1.0)
    bias = np.nanmax(np.c_[np.abs(cap_bias), np.abs(occ_bias), 1 - ov,
                           np.zeros(len(idx))], axis=1)
    rows = []
    for j, name in enumerate(names):
        rows.append({
            "species": name, "captures_labels": int(cap_l[j]), "captures_model": int(cap_m[j]),
            "captures_bias": _num(cap_bias[j]), "captures_bias_ci": _pair(cap_ci[j]),
            "rai_labels": _num(cap_l[j] / total_days * 100) if total_days > 0 else None,
            "rai_model": _num(cap_m[j] / total_days * 100) if total_days > 0 else None,
            "occupancy_labels": float(occ_l[j]), "occupancy_model": float(occ_m[j]),
            "occupancy_diff": float(occ_diff[j]), "occupancy_diff_ci": _pair(occ_ci[j]),
            "overlap": _num(ov[j]), "overlap_ci": _pair(ov_ci[j]),
            "overlap_estimator": "dhat4" if use_d4[j] else "dhat1",
            "bias": float(bias[j]), "flagged": bool(bias[j] > tolerance)})
    order = sorted(range(len(rows)), key=lambda j: (-rows[j]["bias"], rows[j]["species"]))
    rows = [rows[j] for j in order]
    pick = site_species if site_species is not None else (rows[0]["species"] if rows else None)
    per_site = {"species": pick, "rows": []}
    if pick is not None:
        if pick not in names:
            raise EcologyError(f"ecology: site_species {pick!r} is not among the species")
        j = names.index(pick)
        with np.errstate(invalid="ignore", divide="ignore"):
            rai_l = np.where(days > 0, lab[j, :s] / days * 100, np.nan)
            rai_m = np.where(days > 0, mod[j, :s] / days * 100, np.nan)
        for k in np.flatnonzero(sites_present):
            per_site["rows"].append({
                "site": str(table.site_names[k]), "camera_days": float(days[k]),
                "captures_labels": int(lab[j, k]), "captures_model": int(mod[j, k]),
                "rai_labels": _num(rai_l[k]), "rai_model": _num(rai_m[k]),
                "rai_diff": _num(rai_m[k] - rai_l[k]),
                "rai_diff_ci": _pair(site_ci[j, k]) if site_ci is not None else [None, None]})
        per_site["rows"].sort(key=lambda x: -abs(x["rai_diff"] or 0))
    return {"per_species": rows, "per_site": per_site, "n_captures": int(len(table)),
            "n_sites": n_sites, "camera_days": float(total_days), "effort_note": EFFORT_NOTE,
            "tolerance": tolerance}


def activity_curves(table: CaptureTable, species: str) -> pd.DataFrame:
    """Time-of-day kernel densities of a species' labelled and predicted captures.

    The von Mises kernels of the overlap estimate (bandwidth of :func:`concentration`), per
    hour, at the ``n_grid`` bin centres of the 24 h circle.

    Returns
    -------
    DataFrame
        ``hour, labels, model`` (each density integrates to 1 over 24 h; NaN when the
        sample is empty or degenerate).
    """
    if species not in table.classes:
        raise EcologyError(f"ecology: unknown species {species!r}; classes: {table.classes}")
    k = table.classes.index(species)
    cells = _cells(table, table.time_bin, table.n_grid)[k].astype(np.float64)  # (G, 3)
    hist = np.stack([cells[:, 0] + cells[:, 2], cells[:, 1] + cells[:, 2]])
    dens = kde_on_grid(hist, concentration(hist)) * 2 * np.pi / 24  # per radian -> per hour
    hour = (np.arange(table.n_grid) + 0.5) * 24 / table.n_grid
    return pd.DataFrame({"hour": hour, "labels": dens[0], "model": dens[1]})


def ecology(*, captures=None, sites=None, times=None, labels: np.ndarray | None = None,
            model: np.ndarray, classes: list[str], accept: np.ndarray | None = None,
            species: list[str] | None = None, site_species: str | None = None,
            n_resamples: int = 200, level: float = 0.95, tolerance: float = 0.05,
            seed: int = 0, n_grid: int = N_GRID, layout: CaptureLayout | None = None) -> dict:
    """The report's ``ecology`` block: :func:`capture_table` then :func:`ecology_summary`
    (``layout``: see :func:`capture_table`).

    Examples
    --------
    Two sites; labels see a zebra in captures 1 and 3, the model in 1 and 2:

    >>> t = pd.to_datetime(["2024-01-01 08:00", "2024-01-03 08:00", "2024-01-01 09:00",
    ...                     "2024-01-02 09:00"])
    >>> out = ecology(captures=[1, 2, 3, 4], sites=["A", "A", "B", "B"], times=t,
    ...               labels=np.array([1, 0, 1, 0]), model=np.array([1, 1, 0, 0]),
    ...               classes=["empty", "zebra"], n_resamples=0)
    >>> r = out["per_species"][0]
    >>> r["captures_labels"], r["captures_model"], r["occupancy_labels"], r["occupancy_model"]
    (2, 2, 1.0, 0.5)
    """
    table = capture_table(captures=captures, sites=sites, times=times, labels=labels,
                          model=model, classes=classes, accept=accept, n_grid=n_grid,
                          layout=layout)
    return ecology_summary(table, species=species, site_species=site_species,
                           n_resamples=n_resamples, level=level, tolerance=tolerance,
                           seed=seed)
