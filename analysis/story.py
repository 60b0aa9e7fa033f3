"""The guided story of a run's findings: one step per finding, headline generated from numbers.

A presenter walks an audience through a run in a fixed order (issue 18): (1) headline metrics
with intervals, (2) what the model confuses most, (3) the species annotated together (zebra
and wildebeest when the data put them first) and how much of the error that explains,
(4) labels inherited from the capture, (5) how much could be automated at the volunteers'
accuracy, then, when the report holds them, (6) unseen cameras (``generalisation``) and
(7) ecological consequences (``ecology``).

Everything comes from the JSON report dict that ``python -m analysis report`` writes (keys in
docs/formats.md), so the story, the dashboard and the HTML report state the same numbers.
Each :class:`Step` carries its ``headline`` (a sentence built from the numbers), the
``numbers`` it states (raw values, so a test can check the text against the analysis) and
``weak``: True when an interval includes "no effect", and the headline then says so in words.
Steps whose section is absent (or holds nothing to state) are skipped with a reason
(:class:`SkippedStep`).

Where the report carries no interval for a comparison the story makes (error rate with and
without a companion species, first against later frames, accuracy of the auto-labelled
images), the story computes a Wilson score interval, or Newcombe's hybrid score interval for a
difference of two proportions, from the counts in the report. These treat images as
independent; frames of a capture are not, so these intervals are, if anything, too narrow:
a finding they call weak is weak.

>>> report = {"run": {"split": "test"},
...           "image_level": {"n": 200, "accuracy": 0.865, "macro_f1": 0.77,
...                           "macro_f1_ci": [0.61, 0.85]}}
>>> story = build_story(report)
>>> story.steps[0].headline
'The model is right on 86.5 % of 200 test images; macro-F1 0.77 (95 % CI 0.61–0.85).'
>>> [s.key for s in story.skipped][:2]
['confusions', 'cooccurrence']
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from analysis.coverage import VOLUNTEER_ACCURACY

log = logging.getLogger(__name__)

#: Two-sided 95 % normal quantile (for the Wilson and Newcombe intervals).
Z95 = NormalDist().inv_cdf(0.975)
#: Issue 15: a species whose capture count changes by more than this share is flagged.
ECOLOGY_BIAS_FLAG = 0.05
#: The report lists at most this many sequence suspects (``build_report(k=100)``).
SUSPECT_LIST_CAP = 100
NOT_DISTINGUISHABLE = "the difference is not distinguishable from zero"


class ReportFormatError(ValueError):
    """A report section without a field the story needs; the message names section and field."""


@dataclass(frozen=True)
class Step:
    """One screen of the story.

    ``key`` is the URL slug; ``figure`` names the report section whose figure is drawn under
    the headline (``image_level``: per-class F1 bars, ``confusion``, ``cooccurrence``,
    ``frame_accuracy``, ``coverage``, ``generalisation``, ``ecology``); ``numbers`` holds the
    values the headline states, unformatted.
    """

    key: str
    title: str
    headline: str
    detail: str
    numbers: dict = field(default_factory=dict)
    weak: bool = False
    figure: str = ""


@dataclass(frozen=True)
class SkippedStep:
    """A step of the fixed order that this report cannot tell, and why."""

    key: str
    title: str
    reason: str


@dataclass(frozen=True)
class Story:
    """The steps this report can tell, in the fixed order, and the ones skipped."""

    steps: list[Step]
    skipped: list[SkippedStep]


class _Skip(Exception):
    """Raised by a step builder when its section is absent or has nothing to state."""


# ------------------------------------------------------------------------------------------
# Formatting: one way to write each kind of number, shared with the tests and pages.
# ------------------------------------------------------------------------------------------

def fmt_pct(x: float, *, signed: bool = False) -> str:
    """A share as a percentage with one decimal: ``0.865 -> '86.5 %'``.

    >>> fmt_pct(0.865), fmt_pct(-0.12, signed=True)
    ('86.5 %', '-12.0 %')
    """
    return f"{100 * x:+.1f} %" if signed else f"{100 * x:.1f} %"


def fmt_score(x: float) -> str:
    """An F1 score, overlap coefficient or similar in [0, 1], two decimals.

    >>> fmt_score(0.7749)
    '0.77'
    """
    return f"{x:.2f}"


def fmt_count(n: int) -> str:
    """An image or capture count with thousands separators.

    >>> fmt_count(12345)
    '12,345'
    """
    return f"{int(n):,}"


def fmt_ci(ci: Sequence[float | None] | None, *, pct: bool = False) -> str:
    """A 95 % interval, ``'95 % CI 0.61–0.85'``, or ``'no interval computed'``.

    >>> fmt_ci([0.612, 0.851]), fmt_ci([None, None]), fmt_ci([0.1, 0.25], pct=True)
    ('95 % CI 0.61–0.85', 'no interval computed', '95 % CI 10.0–25.0 %')
    """
    if not _has_ci(ci):
        return "no interval computed"
    lo, hi = ci
    if pct:
        return f"95 % CI {100 * lo:.1f}–{100 * hi:.1f} %"
    return f"95 % CI {fmt_score(lo)}–{fmt_score(hi)}"


def _has_ci(ci) -> bool:
    return (ci is not None and len(ci) == 2 and all(v is not None for v in ci)
            and all(math.isfinite(float(v)) for v in ci))


# ------------------------------------------------------------------------------------------
# Intervals from counts
# ------------------------------------------------------------------------------------------

def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN, NaN when ``n`` is 0).

    >>> [round(v, 4) for v in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(x1: int, n1: int, x2: int, n2: int, *, z: float = Z95
                        ) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``x1/n1 - x2/n2`` (Newcombe 1998, method 10).

    >>> [round(v, 4) for v in difference_interval(56, 70, 48, 80)]
    [0.0524, 0.3339]
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z=z)
    l2, u2 = wilson_interval(x2, n2, z=z)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


# ------------------------------------------------------------------------------------------
# Reading the report
# ------------------------------------------------------------------------------------------

def _section(report: Mapping, key: str, what: str):
    value = report.get(key)
    if value is None:
        raise _Skip(f"the report has no {key!r} section ({what})")
    return value


def _field(block: Mapping, key: str, where: str):
    if not isinstance(block, Mapping):
        raise ReportFormatError(f"report {where}: expected an object, got {type(block).__name__}")
    if key not in block:
        raise ReportFormatError(f"report {where}: missing field {key!r} "
                                f"(fields: {', '.join(map(str, block)) or 'none'})")
    return block[key]


def _sentence(text: str) -> str:
    """Upper-case the first letter (a sentence may start with a class name like ``zebra``)."""
    return text[:1].upper() + text[1:]


def _namer(names: Mapping[str, str] | None) -> Callable[[str], str]:
    return (lambda c: str(c)) if names is None else (lambda c: names.get(c, str(c)))


# ------------------------------------------------------------------------------------------
# The steps
# ------------------------------------------------------------------------------------------

def majority_baseline(per_class: Sequence[Mapping]) -> tuple[str, float, float] | None:
    """Class, accuracy and macro-F1 of always answering the most frequent class.

    Macro-F1 over the classes present in the truth or the predictions (as the report's): the
    majority class has F1 = 2 s / (n + s), every other present class 0.

    >>> majority_baseline([{"class": "empty", "support": 60}, {"class": "zebra", "support": 30},
    ...                    {"class": "lion", "support": 10}, {"class": "eland", "support": 0}])
    ('empty', 0.6, 0.25)
    """
    rows = [(r["class"], int(r.get("support") or 0)) for r in per_class]
    present = [(c, s) for c, s in rows if s > 0]
    if not present:
        return None
    n = sum(s for _, s in present)
    cls, s = max(present, key=lambda cs: cs[1])      # first of the largest, in class order
    return cls, s / n, 2 * s / (n + s) / len(present)


def _headline_step(report: Mapping, name) -> Step:
    il = _section(report, "image_level", "headline metrics")
    where = "image_level"
    n, acc = _field(il, "n", where), _field(il, "accuracy", where)
    mf1, ci = _field(il, "macro_f1", where), il.get("macro_f1_ci")
    split = (report.get("run") or {}).get("split")
    images = f"{split} images" if split else "evaluated images"
    numbers = {"n": n, "accuracy": acc, "macro_f1": mf1, "split": split,
               "macro_f1_ci": list(ci) if _has_ci(ci) else None}
    headline = (f"The model is right on {fmt_pct(acc)} of {fmt_count(n)} {images}; "
                f"macro-F1 {fmt_score(mf1)} ({fmt_ci(ci)})")
    weak = False
    base = majority_baseline(il.get("per_class") or [])
    if base is not None and _has_ci(ci) and ci[0] <= base[2]:
        weak = True
        numbers.update(baseline_class=base[0], baseline_macro_f1=base[2])
        headline += (f", not distinguishable from always answering {name(base[0])} "
                     f"(macro-F1 {fmt_score(base[2])})")
    headline += "."
    detail = []
    if "balanced_accuracy" in il and il["balanced_accuracy"] is not None:
        detail.append(f"Balanced accuracy {fmt_pct(il['balanced_accuracy'])}")
    if il.get("weighted_f1") is not None:
        detail.append(f"weighted F1 {fmt_score(il['weighted_f1'])}")
    text = ", ".join(detail) + "." if detail else ""
    if base is not None and not weak:
        text += (f" Always answering {name(base[0])} would score {fmt_pct(base[1])} accuracy "
                 f"and macro-F1 {fmt_score(base[2])}.")
    seq = report.get("sequence_level")
    if seq and seq.get("n"):
        agg = seq.get("aggregation")
        text += (f" Per capture ({fmt_count(seq['n'])} captures"
                 + (f", frames aggregated by {agg}" if agg else "")
                 + f"): right on {fmt_pct(seq['accuracy'])}, macro-F1 "
                 f"{fmt_score(seq['macro_f1'])} ({fmt_ci(seq.get('macro_f1_ci'))}).")
    text += " Intervals resample whole captures."
    return Step("headline", "Headline metrics", headline, text.strip(), numbers, weak,
                "image_level")


def _confusion_step(report: Mapping, name) -> Step:
    mc = _section(report, "most_confused", "most-confused pairs")
    errors = support = None
    cm_block = report.get("confusion")
    if cm_block and cm_block.get("counts") and cm_block.get("classes"):
        classes, counts = cm_block["classes"], cm_block["counts"]
        total = sum(map(sum, counts))
        errors = total - sum(counts[i][i] for i in range(len(counts)))
        support = {c: sum(row) for c, row in zip(classes, counts)}
    if not mc:
        return Step("confusions", "What the model confuses", "The model confuses no two "
                    "classes on this run: every evaluated image is predicted right.", "",
                    {"count": 0}, False, "confusion")
    top = mc[0]
    a, p = _field(top, "actual", "most_confused[0]"), _field(top, "predicted", "most_confused[0]")
    count, rate = int(_field(top, "count", "most_confused[0]")), top.get("rate")
    n_a = support.get(a) if support else (round(count / rate) if rate else None)
    if rate is None and n_a:
        rate = count / n_a
    numbers = {"actual": a, "predicted": p, "count": count, "rate": rate, "n_actual": n_a}
    headline = f"The most frequent confusion: {name(a)} taken for {name(p)}"
    if n_a:
        headline += (f" on {fmt_count(count)} of {fmt_count(n_a)} {name(a)} images "
                     f"({fmt_pct(rate)}).")
    else:
        headline += f" on {fmt_count(count)} images."
    detail = ""
    if errors:
        numbers.update(n_errors=errors, share_of_errors=count / errors)
        detail = (f"That is {fmt_pct(count / errors)} of all {fmt_count(errors)} wrong "
                  f"predictions.")
    rest = [f"{name(r['actual'])} as {name(r['predicted'])} ({fmt_count(r['count'])})"
            for r in mc[1:5]]
    if rest:
        detail += " Next: " + "; ".join(rest) + "."
    return Step("confusions", "What the model confuses", headline, detail.strip(), numbers,
                False, "confusion")


def _cooccurrence_step(report: Mapping, name) -> Step:
    block = _section(report, "cooccurrence", "species annotated together")
    pairs = _field(block, "pairs", "cooccurrence")
    if not pairs:
        raise _Skip("no two classes are annotated together on the same image in this run")
    top = pairs[0]
    where = "cooccurrence.pairs[0]"
    a, b = _field(top, "a", where), _field(top, "b", where)
    n_with, n_without = int(_field(top, "n_a_with_b", where)), int(_field(top, "n_a_without_b",
                                                                          where))
    e_with, e_without = top.get("a_error_with_b"), top.get("a_error_without_b")
    a_to_b, a_to_b_with_b = int(top.get("a_to_b") or 0), int(top.get("a_to_b_with_b") or 0)
    explained = top.get("a_to_b_explained")
    numbers = {"a": a, "b": b, "images_together": top.get("images_together"),
               "n_a_with_b": n_with, "n_a_without_b": n_without,
               "a_error_with_b": e_with, "a_error_without_b": e_without,
               "a_to_b": a_to_b, "a_to_b_with_b": a_to_b_with_b, "a_to_b_explained": explained}
    weak = True
    if n_without == 0 or e_without is None:
        first = (f"All {fmt_count(n_with)} {name(a)} images also show {name(b)} "
                 f"({pct_or_dash(e_with)} of them wrong), so there is nothing to compare "
                 "them with")
    else:
        x1, x2 = round(e_with * n_with), round(e_without * n_without)
        lo, hi = difference_interval(x1, n_with, x2, n_without)
        weak = bool(lo <= 0 <= hi)
        numbers.update(error_difference=e_with - e_without, error_difference_ci=[lo, hi])
        first = (f"{name(a)} images with {name(b)} in them are wrong {fmt_pct(e_with)} of the "
                 f"time ({fmt_count(n_with)} images), without {name(b)} {fmt_pct(e_without)} "
                 f"({fmt_count(n_without)})")
        if weak:
            first += f": {NOT_DISTINGUISHABLE}"
    if a_to_b:
        second = (f"Of {fmt_count(a_to_b)} {name(a)} image{'s' if a_to_b != 1 else ''} "
                  f"taken for {name(b)}, {fmt_count(a_to_b_with_b)} ({fmt_pct(explained)}) "
                  f"{'has' if a_to_b_with_b == 1 else 'have'} {name(b)} annotated too: "
                  "co-presence explains that share of the confusion.")
    else:
        second = f"The model never takes {name(a)} for {name(b)} on this run."
    headline = f"{_sentence(first)}. {second}"
    detail = (f"{_sentence(name(a))} and {name(b)} are annotated together on "
              f"{fmt_count(top.get('images_together') or n_with)} images. Intervals of the "
              "error difference treat images as independent.")
    shown = {frozenset((a, b))}
    others = []
    for r in pairs[1:]:
        if len(others) == 3:
            break
        if frozenset((r["a"], r["b"])) not in shown:
            shown.add(frozenset((r["a"], r["b"])))
            others.append(f"{name(r['a'])} and {name(r['b'])} "
                          f"({fmt_count(r.get('images_together') or 0)})")
    if others:
        detail += " Other pairs seen together: " + "; ".join(others) + "."
    return Step("cooccurrence", "Species seen together", headline, detail, numbers, weak,
                "cooccurrence")


def pct_or_dash(x: float | None) -> str:
    """:func:`fmt_pct`, or ``'–'`` for a missing value."""
    return "–" if x is None else fmt_pct(x)


def _inherited_step(report: Mapping, name) -> Step:
    frames = _section(report, "frame_accuracy", "accuracy by frame position")
    first = [r for r in frames if r.get("frame_num") == 1]
    later = [r for r in frames if (r.get("frame_num") or 0) > 1]
    if not first or not later:
        raise _Skip("no capture of this run has more than one frame")
    n1, c1 = sum(int(r["n"]) for r in first), sum(int(r["correct"]) for r in first)
    n2, c2 = sum(int(r["n"]) for r in later), sum(int(r["correct"]) for r in later)
    acc1, acc2 = c1 / n1, c2 / n2
    lo, hi = difference_interval(c2, n2, c1, n1)
    weak = lo <= 0 <= hi
    numbers = {"accuracy_first": acc1, "accuracy_later": acc2, "n_first": n1, "n_later": n2,
               "difference": acc2 - acc1, "difference_ci": [lo, hi]}
    verb = "falls" if acc2 < acc1 else "rises" if acc2 > acc1 else "stays"
    headline = (f"Accuracy {verb} from {fmt_pct(acc1)} on first frames to {fmt_pct(acc2)} on "
                f"later frames" if verb != "stays" else
                f"Accuracy is {fmt_pct(acc1)} on first frames and on later frames")
    if weak:
        headline += f": {NOT_DISTINGUISHABLE}"
    sus = report.get("sequence_suspects")
    if sus is not None:
        k = sum(1 for s in sus if s.get("kind") == "inherited_label")
        numbers["inherited_suspects"] = k
        if k == 0:
            headline += ". No frame looks like an inherited label"
        else:
            at_least = "At least " if len(sus) >= SUSPECT_LIST_CAP else ""
            headline += (f". {at_least}{fmt_count(k)} "
                         + ("frames look like inherited labels" if k > 1
                            else "frame looks like an inherited label")
                         + f": the model calls {'them' if k > 1 else 'it'}"
                         " empty while another frame of the capture shows the labelled animal")
    headline += "."
    per_frame = "; ".join(f"frame {r['frame_num']}: {fmt_pct(r['accuracy'])} of "
                          f"{fmt_count(r['n'])}" for r in frames)
    detail = (f"Snapshot Serengeti copies a capture's label onto every frame, so a frame the "
              f"animal has left still carries it. By frame: {per_frame}. The interval of the "
              f"difference ({fmt_ci([lo, hi], pct=True)}) treats frames as independent.")
    return Step("inherited-labels", "Labels inherited from the capture", headline, detail,
                numbers, weak, "frame_accuracy")


def _automation_step(report: Mapping, name) -> Step:
    auto = _section(report, "automation", "automation at target precisions")
    if not auto:
        raise _Skip("the report's automation section is empty")
    entry = min(auto, key=lambda e: abs(float(_field(e, "target_precision", "automation[]"))
                                        - VOLUNTEER_ACCURACY))
    where = "automation[]"
    target = float(entry["target_precision"])
    n, n_acc = int(_field(entry, "n", where)), int(_field(entry, "n_accepted", where))
    n_left, acc = int(_field(entry, "n_left", where)), entry.get("accuracy_accepted")
    volunteers = math.isclose(target, VOLUNTEER_ACCURACY, abs_tol=1e-9)
    at = (f"At the volunteers' accuracy ({fmt_pct(target)} precision per class)" if volunteers
          else f"At {fmt_pct(target)} precision per class")
    numbers = {"target_precision": target, "n": n, "n_accepted": n_acc, "n_left": n_left,
               "share_accepted": n_acc / n if n else None, "accuracy_accepted": acc}
    weak = False
    if n_acc == 0:
        headline = f"{at}, no class qualifies: all {fmt_count(n)} images are left for people."
    else:
        headline = (f"{at}, the model could label {fmt_count(n_acc)} of {fmt_count(n)} images "
                    f"({fmt_pct(n_acc / n)}) alone and leave {fmt_count(n_left)} for people")
        if acc is not None:
            lo, hi = wilson_interval(round(acc * n_acc), n_acc)
            numbers["accuracy_accepted_ci"] = [lo, hi]
            if lo < target:
                weak = True
                headline += (f"; their accuracy, {fmt_pct(acc)} ({fmt_ci([lo, hi], pct=True)}"
                             f"), is not distinguishable from the {fmt_pct(target)} "
                             "target")
        headline += "."
    per_class = entry.get("per_class") or []
    never = [name(r["class"]) for r in per_class if r.get("threshold") is None]
    detail = ("Per class, the model's label is accepted when its confidence reaches a "
              "threshold chosen so that the accepted images reach the target precision; "
              "the rest go to people.")
    if acc is not None and not weak and n_acc:
        detail += f" Accuracy of the auto-labelled images: {fmt_pct(acc)}."
    if never:
        detail += f" Classes that cannot reach the target: {', '.join(never)}."
    for other in auto:
        if other is not entry and other.get("n"):
            detail += (f" At {fmt_pct(other['target_precision'])}: "
                       f"{fmt_count(other['n_accepted'])} images ("
                       f"{fmt_pct(other['n_accepted'] / other['n'])}).")
    cert = report.get("certified_automation")
    if cert and cert.get("per_class") is not None:
        cert_n = sum(int(r.get("n_accepted") or 0) for r in cert["per_class"]
                     if r.get("threshold") is not None)
        numbers["certified_n_accepted"] = cert_n
        detail += (f" With thresholds certified by a 95 % lower bound on precision at "
                   f"{fmt_pct(cert['target_precision'])}: {fmt_count(cert_n)} images.")
    return Step("automation", "How much could be automated", headline, detail, numbers, weak,
                "coverage")


def _generalisation_step(report: Mapping, name) -> Step:
    gen = _section(report, "generalisation", "seen against unseen cameras")
    seen, unseen = gen.get("seen") or {}, gen.get("unseen") or {}
    sites = gen.get("per_site") or []
    if not unseen.get("n"):
        raise _Skip("no evaluated image is at a camera the model did not train on")
    u_f1, u_ci = _field(unseen, "macro_f1", "generalisation.unseen"), unseen.get("macro_f1_ci")
    numbers = {"unseen_n": unseen["n"], "unseen_accuracy": unseen.get("accuracy"),
               "unseen_macro_f1": u_f1, "unseen_macro_f1_ci": u_ci}
    weak = False
    if not seen.get("n"):
        scored = [s["macro_f1"] for s in sites if s.get("macro_f1") is not None]
        headline = (f"Every evaluated camera is new to the model: macro-F1 {fmt_score(u_f1)} "
                    f"({fmt_ci(u_ci)}) on {fmt_count(unseen['n'])} images")
        if scored:
            numbers.update(n_sites=len(scored), site_min=min(scored), site_max=max(scored))
            headline += (f"; per site from {fmt_score(min(scored))} to "
                         f"{fmt_score(max(scored))} over {fmt_count(len(scored))} sites")
        headline += "."
    else:
        s_f1, s_ci = _field(seen, "macro_f1", "generalisation.seen"), seen.get("macro_f1_ci")
        numbers.update(seen_n=seen["n"], seen_accuracy=seen.get("accuracy"),
                       seen_macro_f1=s_f1, seen_macro_f1_ci=s_ci)
        headline = (f"At cameras the model never saw, macro-F1 is {fmt_score(u_f1)} "
                    f"({fmt_ci(u_ci)}), against {fmt_score(s_f1)} ({fmt_ci(s_ci)}) at cameras "
                    "it trained on")
        if _has_ci(u_ci) and _has_ci(s_ci) and u_ci[0] <= s_ci[1] and s_ci[0] <= u_ci[1]:
            weak = True
            headline += (": the intervals overlap, so the gap is not distinguishable from "
                         "zero")
        headline += "."
    detail = (f"Accuracy at unseen cameras {pct_or_dash(unseen.get('accuracy'))} "
              f"({fmt_count(unseen['n'])} images)")
    if seen.get("n"):
        detail += (f", at seen cameras {pct_or_dash(seen.get('accuracy'))} "
                   f"({fmt_count(seen['n'])} images)")
    detail += ". Intervals resample whole captures."
    worst = [s for s in sites if s.get("macro_f1") is not None][:3]
    if worst:
        detail += " Worst sites: " + "; ".join(
            f"{s['site']} {fmt_score(s['macro_f1'])}" for s in worst) + "."
    return Step("unseen-cameras", "Cameras the model never saw", headline, detail, numbers,
                weak, "generalisation")


def _ecology_step(report: Mapping, name) -> Step:
    eco = _section(report, "ecology", "ecological consequences")
    rows = _field(eco, "per_species", "ecology")
    scored = [r for r in rows if (r.get("captures_labels") or 0) > 0
              and r.get("captures_model") is not None]
    if not scored:
        raise _Skip("no species has labelled captures in the ecology section")
    biases = [(r["captures_model"] - r["captures_labels"]) / r["captures_labels"]
              for r in scored]
    flagged = [r for r, b in zip(scored, biases) if abs(b) > ECOLOGY_BIAS_FLAG]
    i = max(range(len(scored)), key=lambda j: abs(biases[j]))   # first of the largest
    worst, bias = scored[i], biases[i]
    sp = worst["species"]
    numbers = {"n_species": len(scored), "n_flagged": len(flagged), "species": sp,
               "captures_labels": worst["captures_labels"],
               "captures_model": worst["captures_model"], "capture_bias": bias,
               "overlap": worst.get("overlap"), "overlap_ci": worst.get("overlap_ci")}
    headline = (f"With the model's labels, {fmt_count(len(flagged))} of "
                f"{fmt_count(len(scored))} species change by more than "
                f"{fmt_pct(ECOLOGY_BIAS_FLAG)} in captures; the most, {name(sp)}: "
                f"{fmt_count(worst['captures_model'])} captures instead of "
                f"{fmt_count(worst['captures_labels'])} ({fmt_pct(bias, signed=True)})")
    weak = False
    overlap, ci = worst.get("overlap"), worst.get("overlap_ci")
    if overlap is not None:
        headline += f". Its activity overlap is {fmt_score(overlap)} ({fmt_ci(ci)})"
        # No effect on activity = identical daily patterns = overlap 1.
        if _has_ci(ci) and ci[1] >= 1.0 - 1e-9:
            weak = True
            headline += (": the change in activity is not distinguishable from none")
    headline += "."
    detail = ("Captures are independent detections; a species is flagged when its count "
              f"changes by more than {fmt_pct(ECOLOGY_BIAS_FLAG)}.")
    if worst.get("occupancy_labels") is not None and worst.get("occupancy_model") is not None:
        detail += (f" Naive occupancy of {name(sp)}: {fmt_pct(worst['occupancy_model'])} of "
                   f"sites with the model's labels, {fmt_pct(worst['occupancy_labels'])} with "
                   "the people's.")
    return Step("ecology", "What the errors do to the ecology", headline, detail, numbers, weak,
                "ecology")


#: The fixed order: (URL slug, title, builder).
STEPS: tuple[tuple[str, str, Callable], ...] = (
    ("headline", "Headline metrics", _headline_step),
    ("confusions", "What the model confuses", _confusion_step),
    ("cooccurrence", "Species seen together", _cooccurrence_step),
    ("inherited-labels", "Labels inherited from the capture", _inherited_step),
    ("automation", "How much could be automated", _automation_step),
    ("unseen-cameras", "Cameras the model never saw", _generalisation_step),
    ("ecology", "What the errors do to the ecology", _ecology_step),
)


def build_story(report: Mapping, *, names: Mapping[str, str] | None = None) -> Story:
    """The story of a report: the steps it can tell in the fixed order, and those skipped.

    Parameters
    ----------
    report : dict
        What ``python -m analysis report`` writes (:func:`analysis.report.build_report`);
        the optional ``generalisation``, ``certified_automation`` and ``ecology`` sections
        (issue 15) are used when present.
    names : mapping of str to str, optional
        Display names of classes (e.g. vernacular names from the taxonomy); class names as
        in the report otherwise.

    Returns
    -------
    Story
        ``steps``: :class:`Step` list in the order of :data:`STEPS`; ``skipped``:
        :class:`SkippedStep` for each step whose section is absent or empty, with the reason.

    Raises
    ------
    ReportFormatError
        A section present without a field the story needs (message names both).
    """
    if not isinstance(report, Mapping):
        raise ReportFormatError(f"report: expected a JSON object, got {type(report).__name__}")
    name = _namer(names)
    steps, skipped = [], []
    for key, title, build in STEPS:
        try:
            steps.append(build(report, name))
        except _Skip as why:
            log.info("story: step %s skipped: %s", key, why)
            skipped.append(SkippedStep(key, title, str(why)))
        except (KeyError, TypeError) as exc:
            raise ReportFormatError(f"report section for step {key!r}: unusable value "
                                    f"({type(exc).__name__}: {exc})") from exc
    return Story(steps, skipped)


def story_steps(report: Mapping, *, names: Mapping[str, str] | None = None) -> list[Step]:
    """The steps of :func:`build_story` (skipped ones are logged with their reason).

    Examples
    --------
    >>> steps = story_steps({"image_level": {"n": 50, "accuracy": 0.9, "macro_f1": 0.4,
    ...                                      "macro_f1_ci": [0.1, 0.6],
    ...                                      "per_class": [{"class": "empty", "support": 45},
    ...                                                    {"class": "zebra", "support": 5}]}})
    >>> steps[0].weak
    True
    >>> print(steps[0].headline)  # doctest: +NORMALIZE_WHITESPACE
    The model is right on 90.0 % of 50 evaluated images; macro-F1 0.40 (95 % CI 0.10–0.60),
    not distinguishable from always answering empty (macro-F1 0.47).
    """
    return build_story(report, names=names).steps
