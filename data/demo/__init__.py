"""The offline demo dataset: ``generate`` plans it and writes the files, ``draw`` paints frames.

``make_demo(out, *, n_images=3000, seed=0) -> DemoPaths`` is the entry point (see
docs/formats.md, "Demo dataset"); the file names and the CLI live in :mod:`data.demo.generate`.
"""
from data.demo.generate import DemoError, DemoPaths, make_demo

__all__ = ["DemoError", "DemoPaths", "make_demo"]
