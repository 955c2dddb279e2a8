"""Storage: the tables' contract and the files a survey writes.

:mod:`~research.store.schema` names every status, verdict and column; the raw log
(:mod:`~research.store.rawlog`) holds each finished piece of work; :mod:`~research.store.tables`
streams it into Parquet tables and :mod:`~research.store.results` loads them back;
:mod:`~research.store.diskmap` keeps what grows with the list on disk. Nothing here
reaches the network or imports a layer above it.
"""
