"""Curation: the decisions store (:mod:`~data.curation.store`) and the exports of the curated
dataset, one module per format (:mod:`~data.curation.coco`, :mod:`~data.curation.csv`,
:mod:`~data.curation.camtrapdp`) behind :func:`~data.curation.exports.export`.

The names other packages use are re-exported here.
"""
from data.curation.common import ExportError
from data.curation.exports import FORMATS, download_name, export, export_bytes
from data.curation.store import DecisionError, DecisionStore, parse_labels

__all__ = ["FORMATS", "DecisionError", "DecisionStore", "ExportError", "download_name",
           "export", "export_bytes", "parse_labels"]
