"""The whole evaluation of a run as one JSON document and one self-contained HTML page.

- :mod:`analysis.report.sections`: the one list of sections (page order, JSON keys, titles);
- :mod:`analysis.report.build`: :func:`build_report`, every key computed by the same analysis
  functions the dashboard pages call (keys in docs/formats.md, "The report");
- :mod:`analysis.report.html`: :func:`render_html`, the page drawn from that JSON alone;
- :mod:`analysis.report.images`: thumbnails as ``data:`` URIs.
"""
from analysis.report.build import (BUILDERS, SLICE_DIMENSIONS, TARGET_PRECISIONS,
                                   ReportContext, build_report, plain, run_summary,
                                   slice_scores, write_json)
from analysis.report.html import RENDERERS, render_html, write_html
from analysis.report.images import THUMB_SIZE, thumbnails
from analysis.report.sections import SECTIONS, Section, section_keys

__all__ = ["BUILDERS", "RENDERERS", "SECTIONS", "SLICE_DIMENSIONS", "TARGET_PRECISIONS",
           "THUMB_SIZE", "ReportContext", "Section", "build_report", "plain", "render_html",
           "run_summary", "section_keys", "slice_scores", "thumbnails", "write_html",
           "write_json"]
