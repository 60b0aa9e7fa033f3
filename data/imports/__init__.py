"""Other models' predictions as run folders: SpeciesNet, MegaDetector, CSV/Parquet.

``common`` (records, image matching, label mapping, top-k spreading, writing), one module per
format (``speciesnet``, ``megadetector``, ``table``) and ``importer`` (:func:`import_predictions`
and the ``import-predictions`` command). See docs/formats.md, "Importing other models'
predictions".
"""
from data.imports.common import (DETECTOR_CLASSES, UNMAPPED, ImportFormatError,
                                 read_detector_scores)
from data.imports.importer import FORMATS, import_predictions

__all__ = ["DETECTOR_CLASSES", "FORMATS", "UNMAPPED", "ImportFormatError", "import_predictions",
           "read_detector_scores"]
