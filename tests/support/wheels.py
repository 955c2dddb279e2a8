"""Wheels of the package's dependencies, made from the development environment, for the
packaging test's fresh virtual environment.

The test installs the built wheel with ``pip install --no-index --find-links WHEELHOUSE``, so
pip resolves the wheel's own ``Requires-Dist`` (a missing dependency fails the test) without
asking the package index. The wheelhouse holds, for every distribution the requirements reach
(markers evaluated, extras followed), the version installed here, packed back into a wheel from
its installed files: the files its ``RECORD`` lists inside site-packages (byte code and
installer bookkeeping left out; console scripts are made again from ``entry_points.txt`` by
pip), its ``.dist-info`` metadata and ``WHEEL`` tags, and a new ``RECORD``. Nothing is
downloaded; a wheel already in the wheelhouse (the name carries the version) is reused, so
after the first run the wheelhouse costs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_BOOKKEEPING = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
"""What pip writes into an installed .dist-info, not part of the wheel it came from."""


def dependency_closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` (``Requires-Dist`` strings) need,
    recursively, each once; an extra in a requirement brings that extra's requirements.

    Raises:
        AssertionError: a needed distribution is not installed, or not in a version the
            requirement allows.
    """
    found: dict[str, metadata.Distribution] = {}
    extras_of: dict[str, set[str]] = {}
    pending = [Requirement(r) for r in requirements]
    while pending:
        req = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{req}: not installed in the development environment") from None
        assert req.specifier.contains(dist.version, prereleases=True), f"{req}: {dist.version}"
        key = canonicalize_name(dist.metadata["Name"])
        if key in found and set(req.extras) <= extras_of[key]:
            continue  # seen, with these extras
        found[key] = dist
        extras = extras_of.setdefault(key, set())
        extras |= set(req.extras)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ("", *extras)):
                sub.marker = None  # decided here, where the extras are known
                pending.append(sub)
    return list(found.values())


def requirements_of(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` of a wheel file (extras' requirements carry their marker)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zf.read(name).decode("utf-8")
    return [line.split(":", 1)[1].strip() for line in meta.splitlines()
            if line.startswith("Requires-Dist:")]


def wheelhouse(requirements: Iterable[str], directory: Path) -> list[Path]:
    """A wheel in ``directory`` for every installed distribution ``requirements`` need (made
    with :func:`repack` unless already there); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return [repack(dist, directory) for dist in dependency_closure(requirements)]


def repack(dist: metadata.Distribution, directory: Path) -> Path:
    """The installed ``dist`` packed back into a wheel in ``directory``; an existing wheel of
    the same name (name, version and tag) is kept."""
    files = [f for f in dist.files or [] if f.parts[0] != ".."]
    info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    wheel_meta = Path(str(dist.locate_file(f"{info}/WHEEL"))).read_text(encoding="utf-8")
    tags = [line.split(":", 1)[1].strip().split("-") for line in wheel_meta.splitlines()
            if line.startswith("Tag:")]
    # The file name's compressed tag set (PEP 425): each part's values joined by dots.
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))
    target = directory / f"{info.removesuffix('.dist-info')}-{tag}.whl"
    if target.exists():
        return target
    partial = target.with_suffix(".part")
    record = []
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            name = f.as_posix()
            if "__pycache__" in f.parts or name.endswith(".pyc"):
                continue
            if f.parts[0] == info and f.name in _BOOKKEEPING:
                continue
            source = Path(str(dist.locate_file(f)))
            if not source.is_file():
                continue
            data = source.read_bytes()
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    partial.replace(target)
    return target
