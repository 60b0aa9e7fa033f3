"""Captions and number formats shared by the dashboard and the HTML report (defined once here).

fastai's ``plot_top_losses`` caption reads predicted / actual / loss / p(predicted) /
p(actual); :func:`fastai_caption` writes it, :data:`FASTAI_LEGEND` explains it under a gallery.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

#: The facts a fastai caption shows, in caption order (column names of ``top_losses``).
FASTAI_FIELDS = ("predicted", "actual", "loss", "p_predicted", "p_actual")
#: The legend shown with a gallery of fastai captions.
FASTAI_LEGEND = "Captions: predicted / actual / loss / p(predicted) / p(actual)"


def fastai_caption(predicted: str, actual: str, loss: float, p_predicted: float,
                   p_actual: float) -> str:
    """fastai's ``plot_top_losses`` caption: predicted / actual / loss / p(pred) / p(actual).

    Parameters
    ----------
    predicted, actual : str
        Class names (escape them first when the caption goes into HTML).
    loss, p_predicted, p_actual : float
        Shown with two decimals.

    Returns
    -------
    str

    Examples
    --------
    >>> fastai_caption("zebra", "wildebeest", 2.3026, 0.81, 0.1)
    'zebra / wildebeest / 2.30 / 0.81 / 0.10'
    """
    return f"{predicted} / {actual} / {loss:.2f} / {p_predicted:.2f} / {p_actual:.2f}"


def fmt_interval(interval: Sequence[float] | None, *, digits: int = 3) -> str:
    """``"95% CI [0.812, 0.861]"`` (brackets keep negative bounds readable); an empty string
    without an interval or where a bound is undefined.

    Parameters
    ----------
    interval : pair of float, optional
        Lower and upper bound (None or NaN where undefined).
    digits : int
        Decimals of each bound.

    Returns
    -------
    str

    Examples
    --------
    >>> fmt_interval([0.8123, 0.8612])
    '95% CI [0.812, 0.861]'
    >>> fmt_interval([-0.05, 0.1], digits=2)
    '95% CI [-0.05, 0.10]'
    >>> fmt_interval(None), fmt_interval([None, None]), fmt_interval([float("nan"), 1.0])
    ('', '', '')
    """
    if interval is None or any(v is None for v in interval):
        return ""
    lo, hi = (float(v) for v in interval)
    if math.isnan(lo) or math.isnan(hi):
        return ""
    return f"95% CI [{lo:.{digits}f}, {hi:.{digits}f}]"
