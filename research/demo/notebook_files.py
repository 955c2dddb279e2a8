"""The notebooks of the study, shipped inside the package, and copying them out.

They are package data in ``research/demo/notebooks/`` (a clone links ``notebooks/`` there), so
a user who installed with pip gets them with ``starttls-survey notebooks DIR``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from research.errors import InputError
from research.store.packaged import package_path


def notebooks_dir() -> Path:
    """The shipped notebooks' directory."""
    return package_path("research.demo", "notebooks")


def notebook_files() -> list[Path]:
    """The shipped notebooks (``NN_name.ipynb``), in their reading order."""
    return sorted(notebooks_dir().glob("*.ipynb"))


def copy_notebooks(dest: str | Path, *, force: bool = False) -> list[Path]:
    """Copy every shipped notebook into ``dest`` (made if missing); return the copies.

    Nothing is copied if one would replace a file, unless ``force``.

    Raises:
        InputError: a notebook of the same name is already in ``dest`` (without ``force``), or
            ``dest`` cannot be written.
    """
    dest = Path(dest)
    sources = notebook_files()
    targets = [dest / src.name for src in sources]
    taken = [t for t in targets if t.exists() or t.is_symlink()]
    if taken and not force:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise InputError(f"{taken[0]} exists{more}; use --force to overwrite")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for src, target in zip(sources, targets, strict=True):
            target.unlink(missing_ok=True)  # a link is replaced, not written through
            shutil.copyfile(src, target)
    except OSError as exc:
        raise InputError(f"{dest}: cannot write the notebooks ({exc.strerror or exc})") from None
    return targets
