"""The offline frictionless set-up itself: the official example validates, a broken copy does not."""
from __future__ import annotations

import json
import shutil

from tests.camtrapdp_offline import EXAMPLE, errors, validate_package


def test_official_example_validates_offline():
    report = validate_package(EXAMPLE)
    assert report.valid, errors(report)
    assert {t.name for t in report.tasks} >= {"deployments", "media", "observations"}
    assert all(t.stats["rows"] > 0 for t in report.tasks)


def test_broken_copy_is_caught(tmp_path):
    validate_package(EXAMPLE)  # skips first when the schemas are absent
    pkg = tmp_path / "pkg"
    shutil.copytree(EXAMPLE.parent, pkg)
    lines = (pkg / "observations.csv").read_text().splitlines()
    header = lines[0].split(",")
    i = header.index("observationLevel")
    broken = [",".join(c for j, c in enumerate(row.split(",")) if j != i) for row in lines]
    (pkg / "observations.csv").write_text("\n".join(broken) + "\n")
    report = validate_package(pkg / "datapackage.json")
    assert not report.valid
    assert any("observationLevel" in e or "observations" in e for e in errors(report))


def test_unknown_url_is_refused(tmp_path):
    validate_package(EXAMPLE)
    pkg = tmp_path / "pkg"
    shutil.copytree(EXAMPLE.parent, pkg)
    desc = json.loads((pkg / "datapackage.json").read_text())
    desc["profile"] = "https://example.org/not-a-local-copy.json"
    (pkg / "datapackage.json").write_text(json.dumps(desc))
    report = validate_package(pkg / "datapackage.json")
    assert not report.valid
    assert any("offline" in e or "example.org" in e for e in errors(report)), errors(report)
