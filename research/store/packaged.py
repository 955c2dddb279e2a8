"""Files shipped inside the package (package data): found wherever the package is installed.

The testbed's scenarios, the study's domain list, the MTA log samples and the notebooks live
beside the code that reads them and are declared in ``pyproject.toml``
(``[tool.setuptools.package-data]``), so a wheel carries them. They are located with
:mod:`importlib.resources`, never relative to a clone: in a pip install they are in
site-packages, in an editable install in the source tree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from research.errors import SurveyError


def package_path(package: str, *parts: str) -> Path:
    """The file or directory ``parts`` inside ``package`` (a dotted module name), as a path.

    A wheel installs a package as files, so its data are paths that other processes (the
    testbed's server) and path-based readers (gzip, pcap) can open; a package imported from a
    zip archive is not supported.

    Raises:
        SurveyError: the package is not installed as files.
    """
    resource = resources.files(package).joinpath(*parts)
    if not isinstance(resource, Path):
        raise SurveyError(f"{package} is not installed as files ({resource}); "
                          "install starttls-survey with pip")
    return resource
