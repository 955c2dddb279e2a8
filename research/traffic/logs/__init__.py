"""MTA log parsers: Postfix (:mod:`~research.traffic.logs.postfix`), Exim
(:mod:`~research.traffic.logs.exim`) and Sendmail (:mod:`~research.traffic.logs.sendmail`), each
fed lines already framed by :mod:`~research.traffic.logs.lines`. :mod:`research.traffic.reader`
decides which file goes where.
"""
