"""The opt-out list: domains, MX host names and networks a survey must never contact.

Operators ask to be left out of scans; a survey that runs for hours must honour that for every
name and address it meets, not only for the domains on its input list. One entry a line:

- a name (``example.com``, or ``*.example.com``): that name and every name below it, whether
  it turns up as a domain to survey or as an MX host name;
- an IP address or network in CIDR notation (``192.0.2.7``, ``198.51.100.0/24``,
  ``2001:db8::/32``): no address inside it is connected to.

Blank lines and ``#`` comments (whole-line or trailing) are ignored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from research.errors import InputError, InvalidDomainError
from research.scan._listfile import ListFile
from research.scan.inputs import normalize_domain

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OptOutList:
    names: frozenset[str]
    """Normalised names (IDNA A-labels, lower case)."""
    networks: tuple[IpNetwork, ...]
    source: str
    sha256: str

    def match_name(self, name: str) -> str | None:
        """The entry covering ``name`` (normalised) or one of its parents; None if none does."""
        labels = name.lower().rstrip(".").split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            if candidate in self.names:
                return candidate
        return None

    def match_ip(self, ip: str) -> str | None:
        """The network containing ``ip``, as text; None if none does (or ``ip`` is no IP)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network in self.networks:
            if address.version == network.version and address in network:
                return str(network)
        return None

    def __len__(self) -> int:
        return len(self.names) + len(self.networks)


def read_opt_out(path: str | Path) -> OptOutList:
    """Read an opt-out list (see the module docstring for the format).

    An entry that is neither a valid name nor an IP network makes the whole list unusable:
    guessing what its author meant could mean contacting someone who asked not to be.

    The file may be compressed like a domain list (gzip, bzip2, xz, a zip of one file).

    Raises:
        InputError: the file cannot be read, is binary or not UTF-8 text, or has an invalid
            entry (the message names the line).
    """
    with ListFile(path, "opt-out list") as file:
        names, networks = _entries(file)
        return OptOutList(frozenset(names), tuple(networks), file.name, file.sha256())


def _entries(file: ListFile) -> tuple[set[str], list[IpNetwork]]:
    names: set[str] = set()
    networks: list[IpNetwork] = []
    for number, line in file.lines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        network = _network(entry)
        if network is not None:
            networks.append(network)
            continue
        try:
            name = normalize_domain(entry.removeprefix("*."))
            if name.rsplit(".", 1)[-1].isdigit():
                # No top-level domain is numeric: this is a mistyped address, not a name.
                raise InvalidDomainError(f"neither an IP address nor a name: {entry!r}")
        except InvalidDomainError as exc:
            raise InputError(f"{file.name}: line {number}: not a name or IP network: "
                             f"{exc}") from None
        names.add(name)
    return names, networks


def _network(entry: str) -> IpNetwork | None:
    try:
        # strict=False: "192.0.2.7/24" means the /24 around it, as people write it.
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None
