"""starttls-survey: measure STARTTLS and TLS on mail servers, and reproduce the 2019 survey."""

from __future__ import annotations

__version__ = "0.1.0"
