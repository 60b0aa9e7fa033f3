"""Validate a Camtrap DP package with ``frictionless``, offline, against the published schemas.

The profile, table schemas and the JSON schemas they ``$ref`` are exact copies in
``../shared/schemas`` (see its README). A ``requests`` session answers their URLs from those
files and refuses every other URL, so a validation can neither reach the network nor silently
skip a schema it could not fetch.
"""
from __future__ import annotations

from pathlib import Path

import pytest

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
URLS = {
    "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/" + name:
        SCHEMAS / "camtrap-dp" / "1.0.2" / name
    for name in ("camtrap-dp-profile.json", "deployments-table-schema.json",
                 "media-table-schema.json", "observations-table-schema.json")
}
URLS.update({
    "https://specs.frictionlessdata.io/schemas/data-package.json":
        SCHEMAS / "frictionless" / "data-package.json",
    "http://json.schemastore.org/geojson.json": SCHEMAS / "geojson" / "schemastore-geojson.json",
    "https://geojson.org/schema/GeoJSON.json": SCHEMAS / "geojson" / "GeoJSON.json",
})
EXAMPLE = SCHEMAS / "camtrap-dp" / "1.0.2" / "example" / "datapackage.json"


def require_schemas() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"published schemas absent: {SCHEMAS} (see ../shared/schemas/README.md)")


def _offline_session():
    import io

    import requests
    from urllib3.response import HTTPResponse
    from requests.adapters import BaseAdapter
    from requests.models import Response

    class LocalFiles(BaseAdapter):
        def send(self, request, **_):
            path = URLS.get(request.url.split("#")[0])
            if path is None:
                raise requests.ConnectionError(f"offline: no local copy of {request.url}")
            resp = Response()
            resp.status_code, resp.url, resp.request = 200, request.url, request
            resp.raw = HTTPResponse(body=io.BytesIO(path.read_bytes()), status=200,
                                    preload_content=False,
                                    headers={"Content-Type": "application/json"})
            resp.headers["Content-Type"] = "application/json"
            return resp

        def close(self):
            pass

    session = requests.Session()
    session.mount("http://", LocalFiles())
    session.mount("https://", LocalFiles())
    return session


def validate_package(descriptor: str | Path):
    """The frictionless report for the package at ``descriptor`` (its ``datapackage.json``)."""
    require_schemas()
    import frictionless

    with frictionless.system.use_context(http_session=_offline_session()):
        return frictionless.validate(str(descriptor))


def errors(report) -> list[str]:
    """One line per error: the task (resource) and frictionless's own message."""
    out = [f"package: {e.message}" for e in report.errors]
    for task in report.tasks:
        out += [f"{task.name}: {e.message}" for e in task.errors]
    return out
