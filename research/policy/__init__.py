"""What the standards say, without the network: certificates and WebPKI (RFC 6125, RFC 5280),
cipher suites, MTA-STS (RFC 8461), TLS-RPT (RFC 8460) and DANE (RFC 7672) records and their
verdicts. The lookups that fetch the records live in :mod:`research.scan`; the analysis and the
testbed judge with the same rules.
"""
