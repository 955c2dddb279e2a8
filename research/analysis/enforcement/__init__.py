"""Could a sender enforce TLS to these domains, and what would break? MTA-STS, DANE, WebPKI.

Pure functions of the survey's tables (``hosts``, ``certificates``, ``mx``, ``mta_sts``,
``tlsrpt``, ``dane``). Every output names its unit. The sender is modelled on the RFCs:

* **WebPKI** (:mod:`~research.analysis.enforcement.webpki`; what an MTA-STS sender demands of
  each MX host, RFC 8461 §4.1): STARTTLS, a chain to a trusted root, unexpired, valid for the MX
  host name. An MX host passes when every IP that answered SMTP passes; one that no IP answered
  is ``unreachable``, neither passing nor refused.
* Senders judge each IP they connect to. An MX host whose answering IPs are all refused is
  *refused*; one with some refused and some accepted IPs appears in both ``refused`` and
  ``accepted`` lists (a sender trying its IPs in turn still delivers, so the domain is
  ``degraded``, not lost): :class:`~research.store.schema.LiftedOutcome`.
* **MTA-STS** (:mod:`~research.analysis.enforcement.mta_sts`, RFC 8461 §5) and **DANE**
  (:mod:`~research.analysis.enforcement.dane`, RFC 7672): per-domain verdicts, the
  :class:`~research.store.schema.StsVerdict` and :class:`~research.store.schema.DaneVerdict`
  vocabularies.
* **Readiness** (:mod:`~research.analysis.enforcement.readiness`): both mechanisms and WebPKI
  per domain (:class:`~research.store.schema.Readiness`);
  :mod:`~research.analysis.enforcement.summary` sums a survey up (shares, RFC 8460 result
  types, sentences).
"""

from __future__ import annotations

from research.analysis.enforcement._targets import ip_dane_matches, targets
from research.analysis.enforcement.dane import dane_hosts, dane_verdicts
from research.analysis.enforcement.mta_sts import mta_sts_verdicts
from research.analysis.enforcement.readiness import READINESS, enforcement_readiness
from research.analysis.enforcement.summary import (
    BREAKDOWN_COLUMNS,
    SUMMARY_COLUMNS,
    describe,
    failure_types,
    readiness_summary,
)
from research.analysis.enforcement.webpki import RESULT_ORDER, certificate_names, host_webpki

__all__ = [
    "BREAKDOWN_COLUMNS",
    "READINESS",
    "RESULT_ORDER",
    "SUMMARY_COLUMNS",
    "certificate_names",
    "dane_hosts",
    "dane_verdicts",
    "describe",
    "enforcement_readiness",
    "failure_types",
    "host_webpki",
    "ip_dane_matches",
    "mta_sts_verdicts",
    "readiness_summary",
    "targets",
]
