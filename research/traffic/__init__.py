"""Traffic your own mail server saw: MTA log parsers (:mod:`~research.traffic.logs`), the
capture reader (:mod:`~research.traffic.pcap`), the ``sessions`` table
(:mod:`~research.traffic.sessions`), its analysis (:mod:`~research.traffic.analysis`) and its
charts (:mod:`~research.traffic.plots`).
"""
