"""Names as mail and the Web use them: what is a host name and what is an address literal."""

from __future__ import annotations

import ipaddress


def is_ip_address(text: object, *, version: int | None = None) -> bool:
    """Whether ``text`` is an IP address, bare or in brackets (``[2001:db8::1]``, as an SMTP
    address literal or a log writes it); with ``version``, of that IP version only."""
    if not isinstance(text, str):
        return False
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return False
    return version is None or address.version == version
