"""Names as mail and the Web use them: what is an address literal, and whose a host name is."""

from __future__ import annotations

import functools
import ipaddress

from publicsuffixlist import PublicSuffixList


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


def provider_of(host: str) -> str:
    """The provider an MX host name belongs to: its registrable domain under the Public Suffix
    List's ICANN section (``mx1.mail.example.co.uk`` → ``example.co.uk``,
    ``x.mail.protection.outlook.com`` → ``outlook.com``), lower case, without the final dot.

    The list comes with ``publicsuffixlist`` (no download at run time). Its private section is
    left out on purpose: it separates the customers of a platform (``*.blogspot.com``), while a
    provider here is whoever runs the servers and their shared limits. For a name under a TLD
    the list does not know — the reserved ``.test``, ``.example``, ``.invalid`` — the list's
    default rule ``*`` applies: the last two labels (``mx.pool.test`` → ``pool.test``). A name
    that is itself a public suffix, a single label or an IP address is its own provider.
    """
    name = host.strip().rstrip(".").lower()
    if not name or is_ip_address(name):
        return name
    return _public_suffixes().privatesuffix(name) or name


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # Parsing the bundled list takes tens of milliseconds: once per process, on first use.
    return PublicSuffixList(only_icann=True, accept_unknown=True)
