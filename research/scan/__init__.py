"""Scanning: everything that talks to the network.

The domain list and the opt-out list (:mod:`~research.scan.inputs`, :mod:`~research.scan.optout`),
DNS (:mod:`~research.scan.resolver`, :mod:`~research.scan.dnssec`), the SMTP probe
(:mod:`~research.scan.smtp`), the TLS engines (:mod:`~research.scan.engine`, and sslyze's own
scan in :mod:`~research.scan.sslyze`), where host probes run (:mod:`~research.scan.dispatch`),
the enforcement lookups (:mod:`~research.scan.lookups`) and the runner that ties them together
(:mod:`~research.scan.survey`). What it finds goes to the raw log of :mod:`research.store`.
"""
