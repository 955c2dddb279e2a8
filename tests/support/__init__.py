"""What the tests share: certificate factories, ground-truth checks, a real Postfix, CLI scans
of a testbed, and hand-built survey tables."""
