"""The main job and the study: the testbed's replica of the 2019 population surveyed
(:mod:`~research.demo.run`), and the notebooks that explore a survey, shipped inside the package
(:mod:`~research.demo.notebook_files`) so that ``starttls-survey notebooks DIR`` copies them out
for a user without a clone::

    from research.demo import run_demo, survey_for_notebook
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from research.demo.notebook_files import copy_notebooks, notebook_files, notebooks_dir

_RUN = frozenset({"DEMO_TIMEOUT", "run_demo", "survey_for_notebook"})

__all__ = ["DEMO_TIMEOUT", "copy_notebooks", "notebook_files", "notebooks_dir", "run_demo",
           "survey_for_notebook"]


def __getattr__(name: str) -> Any:
    # The survey imports sslyze and pandas: loaded when first used, so that copying the
    # notebooks out stays quick.
    if name not in _RUN:
        raise AttributeError(f"module 'research.demo' has no attribute {name!r}")
    return getattr(importlib.import_module("research.demo.run"), name)


if TYPE_CHECKING:
    from research.demo.run import DEMO_TIMEOUT, run_demo, survey_for_notebook
