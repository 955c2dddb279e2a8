"""Licences a user can give the data a survey or a ``logs`` run publishes (``--license``).

None by default: the data describe other people's mail servers, and whether and how they may be
shared is the user's decision. Light on purpose (no pandas): the settings validate with it.
"""

from __future__ import annotations

import re

from research.errors import InputError

LICENSES: dict[str, tuple[str, str]] = {
    "CC0-1.0": ("Creative Commons Zero v1.0 Universal",
                "https://creativecommons.org/publicdomain/zero/1.0/"),
    "CC-BY-4.0": ("Creative Commons Attribution 4.0 International",
                  "https://creativecommons.org/licenses/by/4.0/"),
    "CC-BY-SA-4.0": ("Creative Commons Attribution Share-Alike 4.0 International",
                     "https://creativecommons.org/licenses/by-sa/4.0/"),
    "CC-BY-NC-4.0": ("Creative Commons Attribution Non-Commercial 4.0 International",
                     "https://creativecommons.org/licenses/by-nc/4.0/"),
    "ODC-BY-1.0": ("Open Data Commons Attribution License v1.0",
                   "https://opendatacommons.org/licenses/by/1-0/"),
    "ODbL-1.0": ("Open Data Commons Open Database License v1.0",
                 "https://opendatacommons.org/licenses/odbl/1-0/"),
    "PDDL-1.0": ("Open Data Commons Public Domain Dedication and License v1.0",
                 "https://opendatacommons.org/licenses/pddl/1-0/"),
}
"""Licences commonly given to research data, by their SPDX / Open Definition identifier: title
and canonical address, for the descriptor's ``licenses``."""

_LICENSE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def license_entry(text: str) -> dict[str, str]:
    """The descriptor's ``licenses`` item for ``--license TEXT``: a licence identifier
    (:data:`LICENSES` are known by title and address; another SPDX identifier is taken as
    given, matched case-insensitively to a known one) or the address of a licence text.

    Raises InputError for anything else (spaces, an empty string).
    """
    text = text.strip()
    if text.startswith(("https://", "http://")) and " " not in text:
        return {"path": text}
    known = {k.lower(): k for k in LICENSES}
    if text.lower() in known:
        name = known[text.lower()]
        title, path = LICENSES[name]
        return {"name": name, "path": path, "title": title}
    if _LICENSE_ID.fullmatch(text):
        return {"name": text}
    raise InputError(f"licence must be an SPDX identifier (e.g. {', '.join(LICENSES)}) or "
                     f"the https:// address of the licence, not {text!r}")
