"""One exception root for everything the package raises on purpose.

A failing server or resolver is *data* (a status in the results), never an exception; these are
for the caller's mistakes: bad input files, bad options, unknown scenarios.
"""

from __future__ import annotations


class SurveyError(Exception):
    """Root of the package's exceptions; ``str(err)`` is a one-line message fit for a user."""


class InputError(SurveyError):
    """An input file or argument cannot be used (unreadable, empty, wrong columns)."""


class InvalidDomainError(InputError):
    """A string is not a valid domain name."""


class ScenarioError(SurveyError):
    """A testbed scenario is unknown or malformed."""


class TestbedError(SurveyError):
    """The testbed cannot start: a port is taken, an address cannot be bound, the server died."""

    __test__ = False  # not a pytest test class, despite the name


class ResultsError(SurveyError):
    """A results directory is missing, incomplete or not a survey's output."""
