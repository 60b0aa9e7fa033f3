"""The one list of what the report holds: its sections, in page order, and the JSON keys each
one's diagnostics write.

Both halves of the report read :data:`SECTIONS`: :func:`analysis.report.build.build_report`
computes every key named here with ``build.BUILDERS[key]`` (and nothing else), and
:func:`analysis.report.html.render_html` draws every section with
``html.RENDERERS[section.name]``, from the JSON alone. A test checks that the three agree.

To add a diagnostic: a :class:`Section` here (or a key to an existing one), its builder in
``build.py`` (analysis calls), its renderer in ``html.py`` (JSON in, HTML out), and its key in
docs/formats.md.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """One section of the report.

    Attributes
    ----------
    name : str
        Identifier; ``html.RENDERERS[name]`` draws the section.
    title : str or None
        The section's heading, ``str.format_map``-ed over the report (so it may name values:
        ``"Comparison with {comparison[baseline]}"``); None: the page header, drawn bare.
    keys : tuple of str
        Top-level JSON keys this section's diagnostics write (``build.BUILDERS[key]`` computes
        each). A section whose keys are not all in a report (``comparison`` without
        ``--compare``) is not drawn; one with no keys draws from other sections' keys.
    intro : str
        A note under the heading (HTML, not escaped).
    """

    name: str
    title: str | None
    keys: tuple[str, ...] = ()
    intro: str = ""


SECTIONS: tuple[Section, ...] = (
    Section("summary", None, ("run", "policy", "image_level", "sequence_level")),
    Section("story", "The story of this run",
            intro="The findings in the order of the dashboard's Story page: each headline "
                  "is written from the numbers below it, and says when a finding is weak."),
    Section("label_space", "Label space", ("label_space",),
            intro="How the run's classes meet the dataset's: classes the model cannot "
                  "predict, model labels outside the dataset (predicting one is an error) and "
                  "the images no prediction of this model can get right."),
    Section("per_class", "Per-class metrics"),
    Section("slices", "Slices", ("slices",),
            intro="Macro F1 per site, season, day/night and frame position (and split when "
                  "the report covers several), worst first: where the model needs attention. "
                  "Small slices are noisy: read the image count too."),
    Section("confusion", "Confusion", ("most_confused", "confusion"),
            intro="Rows actual, columns predicted; the table lists the most frequent "
                  "confusions."),
    Section("captures", "Captures (sequences)", ("frame_accuracy", "sequence_suspects"),
            intro="A drop at frames 2-3 is the signature of labels inherited from the capture. "
                  "Suspects: frames the model calls empty while another frame of the capture "
                  "shows the labelled species (inherited_label), and species the model is "
                  "confident of but nobody annotated (missed_species)."),
    Section("cooccurrence", "Co-occurrence", ("cooccurrence",),
            intro="A→B: images whose first label is A predicted B; 'explained' is the share of "
                  "them where B is annotated too (errors under the primary policy, correct "
                  "under the set policy)."),
    Section("label_issues", "Relabel candidates", ("label_issues",),
            intro="Confident learning (cleanlab, out-of-sample predictions), sequence suspects "
                  "and top losses merged, one row per image; score = how strongly the model "
                  "doubts the given label."),
    Section("top_losses", "Top losses", ("top_losses",),
            intro="predicted / actual / loss / probability of predicted / probability of "
                  "actual"),
    Section("calibration", "Calibration", ("calibration",)),
    Section("automation", "Automation coverage", ("coverage", "automation"),
            intro="Accept the model's label when its confidence reaches a per-class threshold "
                  "chosen for the target precision; 96.6 % is the volunteers' accuracy "
                  "(Norouzzadeh et al. 2018)."),
    Section("generalisation", "Seen and unseen camera sites", ("generalisation",),
            intro="Images at sites the model trained on (seen) against new sites (unseen), "
                  "with capture-bootstrap 95 % intervals; a random image split that shares "
                  "sites between training and test flatters a model (Beery et al. 2018)."),
    Section("certified_automation", "Certified automation", ("certified_automation",),
            intro="Per-class thresholds whose one-sided 95 % lower confidence bound of "
                  "precision (frames of one capture counted once) reaches the target, next to "
                  "point-estimate thresholds, which miss the target on new data about half "
                  "the time."),
    Section("calibration_fit", "Fitted calibration", ("calibration_fit",),
            intro="Temperature scaling fitted on the validation split (negative "
                  "log-likelihood); ECE on the evaluated images before and after."),
    Section("ecology", "Ecology impact", ("ecology",),
            intro="Per species, captures, naive occupancy and activity overlap from the labels "
                  "against the model (arg-max); 95 % capture-bootstrap intervals; species "
                  "whose bias exceeds 5 % are flagged."),
    Section("comparison", "Comparison with {comparison[baseline]}", ("comparison",)),
)

#: The report rows that show thumbnails (image ids with ``file_name``), in the order their
#: thumbnails are made.
THUMBNAIL_KEYS = ("sequence_suspects", "label_issues", "top_losses")


def section_keys(sections: tuple[Section, ...] = SECTIONS) -> list[str]:
    """Every JSON key the sections write, in page order.

    >>> section_keys()[:4]
    ['run', 'policy', 'image_level', 'sequence_level']
    """
    return [key for s in sections for key in s.keys]
