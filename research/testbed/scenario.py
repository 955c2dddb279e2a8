"""Scenario files: what the testbed serves, and the ground truth a scan of it must find.

A scenario is a TOML file ``data/testbed/NAME.toml`` with three parts::

    [scenario]                      # name (default: file stem), description, optional expect
    name = "example"
    description = "..."
    [scenario.expect]               # optional headline counts, checked against the file
    domains = 2                     # number of [[domains]]
    no_starttls = 1                 # see Scenario.counts()
    no_tls_1_2 = 0

    [[hosts]]                       # one SMTP server (an MX host name and its addresses)
    name = "mx1.example.test"
    addresses = ["127.0.10.1"]      # 127.0.0.0/8 except 127.0.0.1, or "::1"; [] = no A/AAAA
    behaviour = "normal"            # normal | reject_starttls | tls_garbage | greeting_error
                                    # | tarpit | down
    starttls = true                 # normal only; default true
    tls_min = "1.0"                 # normal + starttls only; default "1.2"
    tls_max = "1.3"                 # default "1.3"
    ciphers = "..."                 # optional OpenSSL cipher string for TLS <= 1.2
    certificate = "ca"              # ca | self_signed | wrong_name | expired; default "ca"
    software = "Postfix"            # banner: "220 <name> ESMTP <software>"
    accept_mail = false             # normal only: accept MAIL/RCPT/DATA and discard the mail
                                    # (for an MTA delivering to the testbed; off by default)
    greeting = "554 5.7.1 ..."      # greeting_error only, required there
    expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }

    [[domains]]                     # one entry of the domain list
    name = "example.test"
    rank = 1                        # default: position in the file
    mx = [[10, "mx1.example.test"]] # or null_mx = true, or implicit_mx = true (A/AAAA come from
                                    # the [[hosts]] entry of the same name), or nothing (no mail)
    dns = "ok"                      # ok | nxdomain | servfail | timeout
    expect = { dns_status = "mx" }

Every ``expect`` is checked against what the rest of the file implies, so a scenario cannot
silently disagree with its own ground truth. All names must lie under ``.test`` (RFC 2606).
"""

from __future__ import annotations

import csv
import ipaddress
import re
import ssl
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from research import config
from research.errors import ScenarioError
from research.schema import DnsStatus, HostStatus

TLD = "test"
DNS_RESERVED_ADDRESS = "127.0.0.1"
"""Kept free for the DNS server; no SMTP host may use it."""
IPV6_LOOPBACK = "::1"

TLS_VERSION_NAMES: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")
"""Versions a host can serve, oldest first (the ``tls_min``/``tls_max`` values)."""
_LABEL_BY_NAME = {name: f"TLS {name}" for name in TLS_VERSION_NAMES}


class Behaviour(StrEnum):
    """How a host's SMTP listener behaves."""

    NORMAL = "normal"
    REJECT_STARTTLS = "reject_starttls"
    TLS_GARBAGE = "tls_garbage"
    GREETING_ERROR = "greeting_error"
    TARPIT = "tarpit"
    DOWN = "down"


class Certificate(StrEnum):
    """Which certificate a TLS host presents."""

    CA = "ca"
    """Signed by the testbed CA, valid, for the host name."""
    SELF_SIGNED = "self_signed"
    WRONG_NAME = "wrong_name"
    """Signed by the testbed CA, but for ``wrong.<host>``."""
    EXPIRED = "expired"


class DnsMode(StrEnum):
    """How the DNS server treats a domain's name."""

    OK = "ok"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    """Queries for the name are dropped."""


_IMPLIED_STATUS: dict[Behaviour, HostStatus] = {
    Behaviour.REJECT_STARTTLS: HostStatus.STARTTLS_REJECTED,
    Behaviour.TLS_GARBAGE: HostStatus.TLS_FAILED,
    Behaviour.GREETING_ERROR: HostStatus.SMTP_ERROR,
    Behaviour.TARPIT: HostStatus.TIMEOUT,
    Behaviour.DOWN: HostStatus.REFUSED,
}
_MAIL_STATUSES = (DnsStatus.MX, DnsStatus.IMPLICIT_MX)


@dataclass(frozen=True)
class Host:
    """One MX host: a name, its addresses and how its SMTP server behaves."""

    name: str
    addresses: tuple[str, ...]
    behaviour: Behaviour
    starttls: bool
    """STARTTLS advertised and served (``normal`` hosts only)."""
    tls_min: str | None
    """Oldest TLS version served (``"1.0"``..``"1.3"``); None without TLS."""
    tls_max: str | None
    ciphers: str | None
    """OpenSSL cipher string for TLS <= 1.2, or None for the built-in default."""
    certificate: Certificate | None
    """None without TLS."""
    software: str
    greeting: str | None
    """The full greeting line of a ``greeting_error`` host."""
    expect_status: HostStatus
    expect_versions: tuple[str, ...]
    """Version labels (``research.schema`` style, e.g. ``"TLS 1.2"``) the scan must find."""
    accept_mail: bool = False
    """Accept MAIL, RCPT and DATA and discard the message (``normal`` hosts only), so that a
    real MTA can complete a delivery; by default every transaction is refused."""

    @property
    def serves_tls(self) -> bool:
        return self.behaviour is Behaviour.NORMAL and self.starttls

    @property
    def versions(self) -> tuple[str, ...]:
        """Labels of the TLS versions served, oldest first; empty without TLS."""
        if self.tls_min is None or self.tls_max is None:
            return ()
        lo, hi = TLS_VERSION_NAMES.index(self.tls_min), TLS_VERSION_NAMES.index(self.tls_max)
        return tuple(_LABEL_BY_NAME[v] for v in TLS_VERSION_NAMES[lo : hi + 1])

    @property
    def banner(self) -> str:
        """The greeting line the host sends."""
        return self.greeting or f"220 {self.name} ESMTP {self.software}"


@dataclass(frozen=True)
class Domain:
    """One entry of the domain list and what DNS says about it."""

    name: str
    rank: int
    dns: DnsMode
    mx: tuple[tuple[int, str], ...]
    """(preference, host name) pairs, as written."""
    null_mx: bool
    implicit_mx: bool
    expect_dns_status: DnsStatus

    @property
    def mail_hosts(self) -> tuple[str, ...]:
        """Names mail would go to, most preferred first; empty if the domain takes no mail."""
        if self.implicit_mx:
            return (self.name,)
        return tuple(host for _, host in sorted(self.mx))


@dataclass(frozen=True)
class Counts:
    """Headline numbers of a scenario (see :meth:`Scenario.counts`)."""

    domains: int
    no_starttls: int
    no_tls_1_2: int


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated scenario file."""

    name: str
    description: str
    path: Path
    hosts: tuple[Host, ...]
    domains: tuple[Domain, ...]
    """In rank order."""

    def host(self, name: str) -> Host:
        """The host called ``name``; raises KeyError if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def domain(self, name: str) -> Domain:
        """The domain called ``name``; raises KeyError if there is none."""
        for domain in self.domains:
            if domain.name == name:
                return domain
        raise KeyError(name)

    def domain_list(self) -> list[tuple[int, str]]:
        """(rank, domain) pairs in rank order: the input a scan of this scenario takes."""
        return [(d.rank, d.name) for d in self.domains]

    def targets(self) -> list[tuple[Host, str | None]]:
        """Every (host, address) the scanner should report; address None for a host without."""
        return [(h, ip) for h in self.hosts for ip in (h.addresses or (None,))]

    def counts(self) -> Counts:
        """The headline numbers, derived from the hosts' and domains' ground truth.

        ``no_starttls`` counts domains that take mail (MX or implicit MX) where no host offers
        a working STARTTLS and at least one answers SMTP without advertising it: mail to them
        travels in clear text. ``no_tls_1_2`` counts domains with a working STARTTLS host where
        no such host accepts TLS 1.2 or newer: a sender requiring TLS 1.2 could not reach them.
        """
        by_name = {h.name: h for h in self.hosts}
        no_starttls = no_tls_1_2 = 0
        for domain in self.domains:
            if domain.expect_dns_status not in _MAIL_STATUSES:
                continue
            hosts = [by_name[n] for n in domain.mail_hosts]
            tls_hosts = [h for h in hosts if h.expect_status is HostStatus.STARTTLS]
            if not tls_hosts:
                no_starttls += any(h.expect_status is HostStatus.NO_STARTTLS for h in hosts)
            elif not any({"TLS 1.2", "TLS 1.3"} & set(h.expect_versions) for h in tls_hosts):
                no_tls_1_2 += 1
        return Counts(len(self.domains), no_starttls, no_tls_1_2)


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped in :data:`research.config.TESTBED_DIR`, sorted."""
    return sorted(p.stem for p in config.TESTBED_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario, given a shipped scenario's name or a path to a TOML file.

    Raises ScenarioError (one-line message naming the file and the offending entry) when the
    scenario is unknown, unreadable, not TOML, or breaks any rule of the format.
    """
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(f"cannot read scenario {path}: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ScenarioError(f"{path.name}: not valid TOML: {err}") from err
    try:
        return _Parser(path).scenario(raw)
    except _Invalid as err:
        raise ScenarioError(f"{path.name}: {err}") from None


def write_domain_list(scenario: Scenario, path: Path) -> Path:
    """Write the scenario's domains as a CSV with header ``rank,domain``; return ``path``.

    Creates missing parent directories; raises OSError if the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["rank", "domain"])
        writer.writerows(scenario.domain_list())
    return path


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        return path
    path = config.TESTBED_DIR / f"{text}.toml"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text) or not path.is_file():
        known = ", ".join(list_scenarios()) or "none"
        raise ScenarioError(f"unknown scenario {text!r} (available: {known})")
    return path


_E = TypeVar("_E", bound=Enum)


class _Invalid(Exception):
    """A rule broken somewhere in the file; becomes a ScenarioError with the file's name."""


_NAME_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+" + TLD)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def scenario(self, raw: Mapping[str, Any]) -> Scenario:
        _keys(raw, "top level", required={"domains"}, optional={"scenario", "hosts"})
        meta = _table(raw.get("scenario", {}), "[scenario]")
        _keys(meta, "[scenario]", optional={"name", "description", "expect"})
        name = _str(meta.get("name", self.path.stem), "scenario.name")
        description = _str(meta.get("description", ""), "scenario.description")
        hosts = [self.host(i, h) for i, h in enumerate(_list(raw.get("hosts", []), "hosts"))]
        domains = [self.domain(i, d) for i, d in enumerate(_list(raw["domains"], "domains"))]
        _no_duplicates((h.name for h in hosts), "host name")
        _no_duplicates((d.name for d in domains), "domain name")
        _no_duplicates((d.rank for d in domains), "rank")
        _no_duplicates((ip for h in hosts for ip in h.addresses), "address")
        if not domains:
            raise _Invalid("no [[domains]]")
        self.cross_check(hosts, domains)
        scenario = Scenario(
            name=name,
            description=description,
            path=self.path,
            hosts=tuple(hosts),
            domains=tuple(sorted(domains, key=lambda d: d.rank)),
        )
        self.check_counts(scenario, meta.get("expect"))
        return scenario

    def host(self, index: int, raw: Any) -> Host:
        where = f"hosts[{index}]"
        raw = _table(raw, where)
        name = _name(raw.get("name"), f"{where}.name")
        where = f"host {name}"
        _keys(
            raw,
            where,
            required={"name", "addresses", "expect"},
            optional={"behaviour", "starttls", "tls_min", "tls_max", "ciphers", "certificate",
                      "software", "greeting", "accept_mail"},
        )
        addresses = tuple(_address(a, f"{where}: addresses")
                          for a in _list(raw["addresses"], f"{where}.addresses"))
        _no_duplicates(addresses, f"{where}: address")
        behaviour = _enum(Behaviour, raw.get("behaviour", "normal"), f"{where}: behaviour")
        normal = behaviour is Behaviour.NORMAL
        if "starttls" in raw and not normal:
            raise _Invalid(f"{where}: 'starttls' applies to behaviour 'normal' only")
        starttls = _bool(raw.get("starttls", True), f"{where}: starttls") and normal
        tls_keys = {"tls_min", "tls_max", "ciphers", "certificate"} & raw.keys()
        if tls_keys and not starttls:
            raise _Invalid(f"{where}: {sorted(tls_keys)[0]!r} needs behaviour 'normal' with "
                           "starttls = true")
        tls_min = tls_max = ciphers = certificate = None
        if starttls:
            tls_min = _version(raw.get("tls_min", "1.2"), f"{where}: tls_min")
            tls_max = _version(raw.get("tls_max", "1.3"), f"{where}: tls_max")
            if TLS_VERSION_NAMES.index(tls_min) > TLS_VERSION_NAMES.index(tls_max):
                raise _Invalid(f"{where}: tls_min {tls_min} is newer than tls_max {tls_max}")
            if "ciphers" in raw:
                if tls_min == "1.3":
                    raise _Invalid(f"{where}: 'ciphers' has no effect on a TLS 1.3-only host")
                ciphers = _ciphers(raw["ciphers"], f"{where}: ciphers")
            certificate = _enum(Certificate, raw.get("certificate", "ca"), f"{where}: certificate")
        greeting = None
        if behaviour is Behaviour.GREETING_ERROR:
            if "greeting" not in raw:
                raise _Invalid(f"{where}: behaviour 'greeting_error' needs a 'greeting'")
            greeting = _str(raw["greeting"], f"{where}: greeting")
            if not re.fullmatch(r"[45]\d\d[ -][\x20-\x7e]*", greeting):
                raise _Invalid(f"{where}: greeting must be one line starting with a 4xx/5xx code")
        elif "greeting" in raw:
            raise _Invalid(f"{where}: 'greeting' applies to behaviour 'greeting_error' only")
        accept_mail = _bool(raw.get("accept_mail", False), f"{where}: accept_mail")
        if accept_mail and not normal:
            raise _Invalid(f"{where}: 'accept_mail' applies to behaviour 'normal' only")
        software = _str(raw.get("software", "Postfix"), f"{where}: software")
        if not re.fullmatch(r"[\x20-\x7e]+", software):
            raise _Invalid(f"{where}: software must be printable ASCII")

        host = Host(
            name=name,
            addresses=addresses,
            behaviour=behaviour,
            starttls=starttls,
            tls_min=tls_min,
            tls_max=tls_max,
            ciphers=ciphers,
            certificate=certificate,
            software=software,
            greeting=greeting,
            expect_status=HostStatus.STARTTLS,
            expect_versions=(),
            accept_mail=accept_mail,
        )
        status, versions = self.host_expect(raw["expect"], where)
        implied = _implied_status(host)
        if status is not implied:
            raise _Invalid(f"{where}: expect.status is {status.value!r} but the host's "
                           f"settings give {implied.value!r}")
        # Only a host that completes handshakes has versions to find.
        implied_versions = host.versions if implied is HostStatus.STARTTLS else ()
        if versions != implied_versions:
            raise _Invalid(f"{where}: expect.versions is {list(versions)} but the host's "
                           f"settings give {list(implied_versions)}")
        return replace(host, expect_status=status, expect_versions=versions)

    def host_expect(self, raw: Any, where: str) -> tuple[HostStatus, tuple[str, ...]]:
        raw = _table(raw, f"{where}: expect")
        _keys(raw, f"{where}: expect", required={"status"}, optional={"versions"})
        status = _enum(HostStatus, raw["status"], f"{where}: expect.status")
        versions = tuple(
            _str(v, f"{where}: expect.versions") for v in _list(raw.get("versions", []),
                                                                f"{where}: expect.versions")
        )
        bad = [v for v in versions if v not in _LABEL_BY_NAME.values()]
        if bad:
            raise _Invalid(f"{where}: expect.versions has {bad[0]!r}; use labels like 'TLS 1.2'")
        return status, versions

    def domain(self, index: int, raw: Any) -> Domain:
        where = f"domains[{index}]"
        raw = _table(raw, where)
        name = _name(raw.get("name"), f"{where}.name")
        where = f"domain {name}"
        _keys(raw, where, required={"name", "expect"},
              optional={"rank", "mx", "null_mx", "implicit_mx", "dns"})
        rank = raw.get("rank", index + 1)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise _Invalid(f"{where}: rank must be a positive integer")
        dns = _enum(DnsMode, raw.get("dns", "ok"), f"{where}: dns")
        null_mx = _bool(raw.get("null_mx", False), f"{where}: null_mx")
        implicit_mx = _bool(raw.get("implicit_mx", False), f"{where}: implicit_mx")
        mx = tuple(self.mx_record(r, where) for r in _list(raw.get("mx", []), f"{where}.mx"))
        if "mx" in raw and not mx:
            raise _Invalid(f"{where}: mx is empty; leave it out for a domain without MX")
        kinds = [k for k, on in (("mx", bool(mx)), ("null_mx", null_mx),
                                 ("implicit_mx", implicit_mx)) if on]
        if len(kinds) > 1:
            raise _Invalid(f"{where}: {kinds[0]} and {kinds[1]} exclude each other")
        if kinds and dns is not DnsMode.OK:
            raise _Invalid(f"{where}: dns = {dns.value!r} serves no records, so {kinds[0]} "
                           "makes no sense")
        expect = _table(raw["expect"], f"{where}: expect")
        _keys(expect, f"{where}: expect", required={"dns_status"})
        dns_status = _enum(DnsStatus, expect["dns_status"], f"{where}: expect.dns_status")
        domain = Domain(name, rank, dns, mx, null_mx, implicit_mx, dns_status)
        implied = _implied_dns_status(domain)
        if dns_status is not implied:
            raise _Invalid(f"{where}: expect.dns_status is {dns_status.value!r} but the "
                           f"domain's settings give {implied.value!r}")
        return domain

    @staticmethod
    def mx_record(raw: Any, where: str) -> tuple[int, str]:
        if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int)
                and not isinstance(raw[0], bool) and 0 <= raw[0] <= 65535):
            raise _Invalid(f"{where}: each mx entry must be [preference 0-65535, \"host name\"]")
        return raw[0], _name(raw[1], f"{where}: mx host")

    @staticmethod
    def cross_check(hosts: list[Host], domains: list[Domain]) -> None:
        host_names = {h.name for h in hosts}
        existing = host_names | {d.name for d in domains if d.dns is not DnsMode.NXDOMAIN}
        used: set[str] = set()
        for domain in domains:
            where = f"domain {domain.name}"
            for target in domain.mail_hosts:
                if target not in host_names:
                    what = "implicit_mx needs a [[hosts]] entry" if domain.implicit_mx else (
                        "mx names a host")
                    raise _Invalid(f"{where}: {what} {target!r} that is not defined")
            used.update(domain.mail_hosts)
            if domain.dns is DnsMode.OK and not domain.mx and not domain.null_mx and (
                    not domain.implicit_mx and domain.name in host_names):
                raise _Invalid(f"{where}: has address records (a host of the same name) but no "
                               "mx; set implicit_mx = true")
            if domain.dns is DnsMode.NXDOMAIN:
                below = sorted(n for n in existing
                               if n == domain.name or n.endswith("." + domain.name))
                if below:
                    raise _Invalid(f"{where}: dns = 'nxdomain' but {below[0]!r} exists "
                                   "at or below it")
        unused = sorted(host_names - used)
        if unused:
            raise _Invalid(f"host {unused[0]}: not used by any domain")

    @staticmethod
    def check_counts(scenario: Scenario, raw: Any) -> None:
        if raw is None:
            return
        raw = _table(raw, "[scenario.expect]")
        _keys(raw, "[scenario.expect]", optional=set(Counts.__dataclass_fields__))
        derived = scenario.counts()
        for key, value in raw.items():
            if getattr(derived, key) != value:
                raise _Invalid(f"[scenario.expect] {key} = {value!r}, but the hosts and domains "
                               f"give {getattr(derived, key)}")


def _implied_status(host: Host) -> HostStatus:
    if not host.addresses:
        return HostStatus.UNRESOLVED
    if host.behaviour is Behaviour.NORMAL:
        return HostStatus.STARTTLS if host.starttls else HostStatus.NO_STARTTLS
    return _IMPLIED_STATUS[host.behaviour]


def _implied_dns_status(domain: Domain) -> DnsStatus:
    if domain.dns is DnsMode.NXDOMAIN:
        return DnsStatus.NXDOMAIN
    if domain.dns is not DnsMode.OK:
        return DnsStatus.DNS_ERROR
    if domain.null_mx:
        return DnsStatus.NULL_MX
    if domain.mx:
        return DnsStatus.MX
    return DnsStatus.IMPLICIT_MX if domain.implicit_mx else DnsStatus.NO_MAIL


def _keys(raw: Mapping[str, Any], where: str, *, required: Iterable[str] = (),
          optional: Iterable[str] = ()) -> None:
    required = set(required)
    missing = sorted(required - raw.keys())
    if missing:
        raise _Invalid(f"{where}: missing key {missing[0]!r}")
    unknown = sorted(raw.keys() - required - set(optional))
    if unknown:
        raise _Invalid(f"{where}: unknown key {unknown[0]!r}")


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Invalid(f"{where} must be a table")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _Invalid(f"{where} must be an array")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise _Invalid(f"{where} must be a string")
    return raw


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise _Invalid(f"{where} must be true or false")
    return raw


def _enum(cls: type[_E], raw: Any, where: str) -> _E:
    try:
        return cls(raw)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)
        raise _Invalid(f"{where} is {raw!r}; expected one of {choices}") from None


def _name(raw: Any, where: str) -> str:
    name = _str(raw, where).lower().rstrip(".")
    if len(name) > 253 or not _NAME_RE.fullmatch(name):
        raise _Invalid(f"{where} {raw!r} is not a host name under .{TLD}")
    return name


def _address(raw: Any, where: str) -> str:
    text = _str(raw, where)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise _Invalid(f"{where}: {text!r} is not an IP address") from None
    if ip.version == 6:
        if ip != ipaddress.IPv6Address(IPV6_LOOPBACK):
            raise _Invalid(f"{where}: {text} is not loopback; the only IPv6 address is ::1")
        return IPV6_LOOPBACK
    if not ip.is_loopback or str(ip) in (DNS_RESERVED_ADDRESS, "127.0.0.0", "127.255.255.255"):
        raise _Invalid(f"{where}: {text} must be in 127.0.0.0/8, not 127.0.0.1 (kept for DNS)")
    return str(ip)


def _version(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or raw not in TLS_VERSION_NAMES:
        raise _Invalid(f"{where} is {raw!r}; expected one of "
                       + ", ".join(f'"{v}"' for v in TLS_VERSION_NAMES))
    return str(raw)


def _ciphers(raw: Any, where: str) -> str:
    text = _str(raw, where)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(text)
    except ssl.SSLError:
        raise _Invalid(f"{where}: OpenSSL accepts no cipher from {text!r}") from None
    return text


def _no_duplicates(values: Iterable[object], what: str) -> None:
    dupes = [v for v, n in Counter(values).items() if n > 1]
    if dupes:
        raise _Invalid(f"duplicate {what} {dupes[0]!r}")
