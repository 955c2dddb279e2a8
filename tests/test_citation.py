"""CITATION.cff: the software's citation, in step with the package's own metadata."""

from __future__ import annotations

import tomllib

import yaml
from support.repo import REPO_DIR


def test_citation_file_matches_the_package() -> None:
    cff = yaml.safe_load((REPO_DIR / "CITATION.cff").read_text(encoding="utf-8"))
    project = tomllib.loads((REPO_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    project = project["project"]
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["message"] and cff["title"].startswith(project["name"])
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"]
    assert [a["name"] for a in cff["authors"]] == [a["name"] for a in project["authors"]]
    assert str(cff["date-released"])[:4].isdigit()
    diary = cff["references"][0]
    assert (diary["date-published"], diary["authors"][0]["family-names"]) == ("2019-08-26",
                                                                              "Ullrich")
