"""Scenario files: what the testbed serves, and the ground truth a scan of it must find.

A scenario is a TOML file ``data/testbed/NAME.toml`` with three parts::

    [scenario]                      # name (default: file stem), description, optional expect
    name = "example"
    description = "..."
    rtt_ms = 50                     # optional: every host answers as if this many ms away
    [scenario.expect]               # optional headline counts, checked against the file
    domains = 2                     # number of [[domains]]
    no_starttls = 1                 # see Scenario.counts()
    no_tls_1_2 = 0

    [[hosts]]                       # one SMTP server (an MX host name and its addresses)
    name = "mx1.example.test"
    addresses = ["127.0.10.1"]      # 127.0.0.0/8 except 127.0.0.1, or "::1"; [] = no A/AAAA
    behaviour = "normal"            # normal | reject_starttls | tls_garbage | greeting_error
                                    # | tarpit | down, or a hostile one (see Behaviour):
                                    # slow_banner | helo_only | tls_alert | tls_reset | http
                                    # | endless_line | endless_continuation
                                    # | reset_after_banner | blackhole
    starttls = true                 # normal only; default true
    tls_min = "1.0"                 # normal + starttls only; default "1.2"
    tls_max = "1.3"                 # default "1.3"
    ciphers = "..."                 # optional OpenSSL cipher string for TLS <= 1.2
    certificate = "ca"              # ca | self_signed | wrong_name | expired; default "ca"
    software = "Postfix"            # banner: "220 <name> ESMTP <software>"
    accept_mail = false             # normal only: accept MAIL/RCPT/DATA and discard the mail
                                    # (for an MTA delivering to the testbed; off by default)
    greeting = "554 5.7.1 ..."      # greeting_error only, required there
    rtt_ms = 120                    # optional: this host's round-trip delay (overrides the
                                    # scenario's)
    throttle = { every = 5 }        # optional: answer 421 and hang up on every 5th connection;
                                    # or { after = 30 }: on every connection after the 30th
    flood_bytes = 1048576           # endless_line / endless_continuation only: bytes sent
                                    # before hanging up (default 64 MiB)
    aliases = ["mx-alias.example.test"]  # names served as CNAMEs to this host (RFC 2181
                                    # §10.3 forbids an MX pointing at one; mx may still do it)
    expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }
                                    # optional error = "..." : text the scan's error must contain

    [[domains]]                     # one entry of the domain list
    name = "example.test"
    rank = 1                        # default: position in the file
    mx = [[10, "mx1.example.test"]] # or null_mx = true, or implicit_mx = true (A/AAAA come from
                                    # the [[hosts]] entry of the same name), or nothing (no mail)
    dns = "ok"                      # ok | nxdomain | servfail | timeout | truncate | flaky
    mixed_null_mx = true            # also serve MX 0 "." beside mx (invalid per RFC 7505)
    expect = { dns_status = "mx" }  # optional error = "..." as for hosts

A host whose ``name`` is an IPv4 address stands for an MX record pointing at an IP literal
(RFC 5321 §5.1 forbids it): it takes only ``name``, ``addresses = []`` and ``expect``, and
nothing listens for it.

Every ``expect`` is checked against what the rest of the file implies, so a scenario cannot
silently disagree with its own ground truth. All names must lie under ``.test`` (RFC 2606).

Distance and throttling shape a host's traffic without changing its ground truth:

- ``rtt_ms`` (scenario-wide, or per host, which wins) puts the host at an internet-like
  distance: every write of its server (the greeting, each SMTP reply, each TLS flight, the
  closing of the connection) leaves ``rtt_ms`` milliseconds late, so each exchange a client
  waits for costs one round trip, as it would across the Internet. On bare loopback a session
  costs about a millisecond, which hides what every extra session costs a real survey.
  ``Testbed.start(..., rtt_ms=)`` replaces the scenario-wide value (hosts with their own keep
  it). DNS is not delayed.
- ``throttle`` makes the host behave like a provider that limits scanners: the connections it
  picks are greeted with ``421 4.7.0 ... try again later`` and closed. ``every = N`` (N >= 2)
  picks every Nth connection, ``after = N`` (N >= 1) every connection after the Nth. The first
  connection is never throttled, so the host's expected status is unchanged; what a scan of its
  TLS versions can still decide is not, so throttled hosts belong in tests of the scanner's
  throttle handling rather than in ground-truth scenarios.
Certificates, MTA-STS, TLS-RPT and DANE add optional keys (all additive; a scenario without
them serves exactly what it did before)::

    [[hosts]]
    certificate = "untrusted"       # also: untrusted (signed by a CA the scanner is not given),
                                    # client_only (EKU clientAuth only: breaks WebPKI rules)
    certificate_names = ["mx1.example.test", "example.test"]   # the leaf's SANs (default: the
                                    # host name; for wrong_name, wrong.<host>)
    certificate_key = "ecdsa-p256"  # or "rsa2048" (default; TLS 1.0/1.1 hosts need RSA)
    send_ca = true                  # present the issuing CA after the leaf (DANE-TA needs it)
    tlsa = ["3 1 1 match", "2 0 1 match", "3 1 1 mismatch", "3 1 1 0a1b..."]
                                    # TLSA at _25._tcp.<host>: usage selector matching-type,
                                    # then "match" (computed from the served leaf, for usage
                                    # 2/0 from its CA), "mismatch" (a digest of nothing served)
                                    # or hex data
    tlsa_dnssec = "signed"          # signed (default) | unsigned (no RRSIG) | bogus (an RRSIG
                                    # that does not verify)
    expect = { status = "starttls", versions = [...], webpki = "certificate-expired",
               dane = "tlsa-invalid" }

    [[domains]]
    dnssec = "signed"               # the domain's own records (MX, A): signed | unsigned | bogus
    tlsrpt = ["v=TLSRPTv1; rua=mailto:tls@example.test"]   # TXT at _smtp._tls.<domain>
    [domains.mta_sts]               # MTA-STS for the [[domains]] entry just above
    txt = ["v=STSv1; id=20240601"]  # TXT at _mta-sts.<domain>
    address = "127.0.210.1"         # A of mta-sts.<domain>; leave out for no address
    policy = "version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n"
    serve = "ok"                    # ok | redirect (301) | not_found (404) | down (no listener)
    content_type = "text/plain"     # default "text/plain; charset=utf-8"
    certificate = "ca"              # ca | self_signed | wrong_name | expired | untrusted

The DNS zone ``test.`` is DNSSEC-signed (ECDSA P-256) with a key made at start; its DS record
is the trust anchor. Signatures go out only to queries with the DO bit. Names not configured
otherwise are signed.

``webpki`` is checked like ``status``: it follows from the host's status and certificate.
The other new expectations are the scenario author's ground truth, stated from the RFCs and not
re-derived here (deriving them would repeat the analysis under test); the tests compare the
scan with them:

* host ``dane``: what a DANE sender makes of the host when the domain's MX RRset is secure:
  ``authenticated``, ``encrypted`` (secure TLSA, none usable: TLS without authentication),
  ``opportunistic`` (no or insecure TLSA), or an RFC 8460 failure (``tlsa-invalid``,
  ``dnssec-invalid``, ``starttls-not-supported``);
* domain ``mta_sts`` (verdict), ``mta_sts_fetch`` (``fetch_status``), ``mta_sts_refused`` (MX
  hosts an enforcing sender refuses), ``tlsrpt`` (status), ``tlsrpt_rua``, ``dane`` (verdict),
  ``dane_refused``, ``cert_matches_domain``: see :mod:`research.analysis.enforcement`.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import ssl
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from research import settings as config
from research.errors import ScenarioError
from research.policy.certs import name_matches
from research.policy.names import is_ip_address
from research.store.schema import DnsStatus, FetchStatus, HostStatus, RecordStatus, TlsResult

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
    # Hostile or broken servers (research.testbed.hostile):
    SLOW_BANNER = "slow_banner"
    """An endless multi-line greeting, sent one byte at a time."""
    HELO_ONLY = "helo_only"
    """Refuses EHLO (502), accepts HELO: an ancient or stripped-down server."""
    TLS_ALERT = "tls_alert"
    """Accepts STARTTLS, answers the ClientHello with a fatal TLS alert."""
    TLS_RESET = "tls_reset"
    """Accepts STARTTLS, resets the connection once the ClientHello arrives."""
    HTTP = "http"
    """A web server on the SMTP port."""
    ENDLESS_LINE = "endless_line"
    """A greeting line that never ends (``flood_bytes`` long, no newline)."""
    ENDLESS_CONTINUATION = "endless_continuation"
    """Answers EHLO with ``250-`` continuation lines, ``flood_bytes`` of them."""
    RESET_AFTER_BANNER = "reset_after_banner"
    """Greets, then resets the connection at the first command."""
    BLACKHOLE = "blackhole"
    """Connection attempts are silently dropped, like a firewall's DROP rule."""


class Certificate(StrEnum):
    """Which certificate a TLS host presents."""

    CA = "ca"
    """Signed by the testbed CA, valid, for the host name."""
    SELF_SIGNED = "self_signed"
    WRONG_NAME = "wrong_name"
    """Signed by the testbed CA, but for ``wrong.<host>``."""
    EXPIRED = "expired"
    UNTRUSTED = "untrusted"
    """Signed by a second CA, which the scanner is not told to trust."""
    CLIENT_ONLY = "client_only"
    """Signed by the testbed CA, but its extended key usage allows clientAuth only."""


class CertificateKey(StrEnum):
    """The leaf's key type."""

    RSA2048 = "rsa2048"
    ECDSA_P256 = "ecdsa-p256"


class DnssecMode(StrEnum):
    """How the DNS server signs a name's records (for queries with the DO bit)."""

    SIGNED = "signed"
    UNSIGNED = "unsigned"
    """No RRSIG: as if the name sat in an unsigned zone."""
    BOGUS = "bogus"
    """An RRSIG whose signature does not verify."""


class PolicyServe(StrEnum):
    """What the MTA-STS policy host answers to ``GET /.well-known/mta-sts.txt``."""

    OK = "ok"
    REDIRECT = "redirect"
    """301 to another URL (RFC 8461 forbids following it)."""
    NOT_FOUND = "not_found"
    DOWN = "down"
    """Nothing listens: connections are refused."""


class DnsMode(StrEnum):
    """How the DNS server treats a domain's name."""

    OK = "ok"
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    """Queries for the name are dropped."""
    TRUNCATE = "truncate"
    """UDP answers for the name are truncated (TC): only TCP gets the records."""
    FLAKY = "flaky"
    """Every other query for the name gets SERVFAIL, starting with the first."""


_DNS_SERVING_RECORDS = (DnsMode.OK, DnsMode.TRUNCATE, DnsMode.FLAKY)


_IMPLIED_STATUS: dict[Behaviour, HostStatus] = {
    Behaviour.REJECT_STARTTLS: HostStatus.STARTTLS_REJECTED,
    Behaviour.TLS_GARBAGE: HostStatus.TLS_FAILED,
    Behaviour.GREETING_ERROR: HostStatus.SMTP_ERROR,
    Behaviour.TARPIT: HostStatus.TIMEOUT,
    Behaviour.DOWN: HostStatus.REFUSED,
    Behaviour.SLOW_BANNER: HostStatus.TIMEOUT,
    Behaviour.HELO_ONLY: HostStatus.NO_STARTTLS,
    Behaviour.TLS_ALERT: HostStatus.TLS_FAILED,
    Behaviour.TLS_RESET: HostStatus.TLS_FAILED,
    Behaviour.HTTP: HostStatus.SMTP_ERROR,
    Behaviour.ENDLESS_LINE: HostStatus.SMTP_ERROR,
    Behaviour.ENDLESS_CONTINUATION: HostStatus.SMTP_ERROR,
    Behaviour.RESET_AFTER_BANNER: HostStatus.REFUSED,
    Behaviour.BLACKHOLE: HostStatus.TIMEOUT,
}
_FLOODS = (Behaviour.ENDLESS_LINE, Behaviour.ENDLESS_CONTINUATION)
_MAIL_STATUSES = (DnsStatus.MX, DnsStatus.IMPLICIT_MX)


@dataclass(frozen=True)
class Throttle:
    """Which connections a throttling host refuses with ``421`` (see the module docstring)."""

    every: int | None = None
    """Refuse every Nth connection (the Nth, 2Nth, ...)."""
    after: int | None = None
    """Refuse every connection after the first N."""

    def refuses(self, connection: int) -> bool:
        """Whether the ``connection``-th connection (counting from 1) gets the 421."""
        if self.every is not None and connection % self.every == 0:
            return True
        return self.after is not None and connection > self.after


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
    """Version labels (``research.store.schema`` style, e.g. ``"TLS 1.2"``) the scan must find."""
    rtt_ms: float | None = None
    """This host's own round-trip delay in milliseconds; None: the scenario's."""
    throttle: Throttle | None = None
    flood_bytes: int | None = None
    """Bytes an ``endless_*`` host sends before hanging up; None for the default."""
    aliases: tuple[str, ...] = ()
    """Names the DNS server serves as CNAMEs pointing at this host."""
    expect_error: str | None = None
    """Text the scan's ``error`` for this host must contain, if given."""
    certificate_names: tuple[str, ...] = ()
    """The leaf's DNS names; empty for the default (see the module doc)."""
    certificate_key: CertificateKey = CertificateKey.RSA2048
    send_ca: bool = False
    tlsa: tuple[str, ...] = ()
    """TLSA records as written: ``"usage selector mtype data"``, data ``match``/``mismatch``/hex."""
    tlsa_dnssec: DnssecMode = DnssecMode.SIGNED
    expect_webpki: str | None = None
    """``webpki_result`` the scan must find (``ok`` or an RFC 8460 type); None: not stated."""
    expect_dane: str | None = None

    accept_mail: bool = False
    """Accept MAIL, RCPT and DATA and discard the message (``normal`` hosts only), so that a
    real MTA can complete a delivery; by default every transaction is refused."""

    @property
    def leaf_names(self) -> tuple[str, ...]:
        """The DNS names in the leaf this host presents."""
        if self.certificate_names:
            return self.certificate_names
        if self.certificate is Certificate.WRONG_NAME:
            return (f"wrong.{self.name}",)
        return (self.name,)

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
class MtaSts:
    """A domain's MTA-STS: TXT records, and the HTTPS policy host ``mta-sts.<domain>``."""

    domain: str
    txt: tuple[str, ...]
    address: str | None
    """Address of the policy host; None: the name has no address."""
    policy: str
    serve: PolicyServe
    content_type: str
    certificate: Certificate

    @property
    def host(self) -> str:
        return f"mta-sts.{self.domain}"

    @property
    def leaf_names(self) -> tuple[str, ...]:
        if self.certificate is Certificate.WRONG_NAME:
            return (f"wrong.{self.host}",)
        return (self.host,)


@dataclass(frozen=True)
class DomainExpect:
    """Ground truth for a domain's enforcement verdicts (None: not stated)."""

    mta_sts: str | None = None
    mta_sts_fetch: str | None = None
    mta_sts_refused: tuple[str, ...] | None = None
    tlsrpt: str | None = None
    tlsrpt_rua: tuple[str, ...] | None = None
    dane: str | None = None
    dane_refused: tuple[str, ...] | None = None
    cert_matches_domain: bool | None = None


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
    mixed_null_mx: bool = False
    """A null MX (``MX 0 .``) is served beside the ``mx`` records (invalid per RFC 7505)."""
    expect_error: str | None = None
    """Text the scan's ``error`` for this domain must contain, if given."""
    dnssec: DnssecMode = DnssecMode.SIGNED
    tlsrpt: tuple[str, ...] = ()
    """TXT records at ``_smtp._tls.<name>``."""
    mta_sts: MtaSts | None = None
    expect: DomainExpect = field(default_factory=lambda: DomainExpect())

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
    rtt_ms: float = 0.0
    """Round-trip delay in milliseconds of every host without its own ``rtt_ms``."""

    def rtt_for(self, host: Host) -> float:
        """The round-trip delay, in milliseconds, that ``host`` answers with."""
        return self.rtt_ms if host.rtt_ms is None else host.rtt_ms

    def host(self, name: str) -> Host:
        """The host called ``name``; raises KeyError if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def alias_target(self, name: str) -> Host | None:
        """The host that ``name`` is a CNAME alias of, or None if it is no alias."""
        for host in self.hosts:
            if name in host.aliases:
                return host
        return None

    def domain(self, name: str) -> Domain:
        """The domain called ``name``; raises KeyError if there is none."""
        for domain in self.domains:
            if domain.name == name:
                return domain
        raise KeyError(name)

    def domain_list(self) -> list[tuple[int, str]]:
        """(rank, domain) pairs in rank order: the input a scan of this scenario takes."""
        return [(d.rank, d.name) for d in self.domains]

    def policy_hosts(self) -> list[MtaSts]:
        """Every domain's MTA-STS settings, in rank order."""
        return [d.mta_sts for d in self.domains if d.mta_sts is not None]

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
        # An alias (CNAME) leads to the host it names.
        by_name.update({a: h for h in self.hosts for a in h.aliases})
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
    """Names of the scenarios shipped in :data:`research.settings.TESTBED_DIR`, sorted."""
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
        _keys(meta, "[scenario]", optional={"name", "description", "expect", "rtt_ms"})
        name = _str(meta.get("name", self.path.stem), "scenario.name")
        description = _str(meta.get("description", ""), "scenario.description")
        rtt_ms = _rtt(meta.get("rtt_ms", 0), "scenario.rtt_ms")
        hosts = [self.host(i, h) for i, h in enumerate(_list(raw.get("hosts", []), "hosts"))]
        domains = [self.domain(i, d) for i, d in enumerate(_list(raw["domains"], "domains"))]
        _no_duplicates((h.name for h in hosts), "host name")
        _no_duplicates((d.name for d in domains), "domain name")
        _no_duplicates((d.rank for d in domains), "rank")
        _no_duplicates((ip for h in hosts for ip in h.addresses), "address")
        policies = [d.mta_sts for d in domains if d.mta_sts is not None]
        _no_duplicates([*(ip for h in hosts for ip in h.addresses),
                        *(p.address for p in policies if p.address)], "address")
        clash = sorted({p.host for p in policies} & {h.name for h in hosts})
        if clash:
            raise _Invalid(f"host {clash[0]}: the name is the MTA-STS policy host of a domain")
        if not domains:
            raise _Invalid("no [[domains]]")
        self.cross_check(hosts, domains)
        scenario = Scenario(
            name=name,
            description=description,
            path=self.path,
            hosts=tuple(hosts),
            domains=tuple(sorted(domains, key=lambda d: d.rank)),
            rtt_ms=rtt_ms,
        )
        self.check_counts(scenario, meta.get("expect"))
        return scenario

    def host(self, index: int, raw: Any) -> Host:
        where = f"hosts[{index}]"
        raw = _table(raw, where)
        if is_ip_address(raw.get("name"), version=4):
            return self.ip_literal_host(raw)
        name = _name(raw.get("name"), f"{where}.name")
        where = f"host {name}"
        _keys(
            raw,
            where,
            required={"name", "addresses", "expect"},
            optional={"behaviour", "starttls", "tls_min", "tls_max", "ciphers", "certificate",
                      "software", "greeting", "flood_bytes", "aliases", "accept_mail",
                      "rtt_ms", "throttle", *_HOST_ENFORCEMENT_KEYS},
        )
        addresses = tuple(_address(a, f"{where}: addresses")
                          for a in _list(raw["addresses"], f"{where}.addresses"))
        _no_duplicates(addresses, f"{where}: address")
        behaviour = _enum(Behaviour, raw.get("behaviour", "normal"), f"{where}: behaviour")
        normal = behaviour is Behaviour.NORMAL
        if "starttls" in raw and not normal:
            raise _Invalid(f"{where}: 'starttls' applies to behaviour 'normal' only")
        starttls = _bool(raw.get("starttls", True), f"{where}: starttls") and normal
        tls_keys = {"tls_min", "tls_max", "ciphers", "certificate", "certificate_names",
                    "certificate_key", "send_ca"} & raw.keys()
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
        rtt_ms = _rtt(raw["rtt_ms"], f"{where}: rtt_ms") if "rtt_ms" in raw else None
        throttle = None
        if "throttle" in raw:
            if behaviour in (Behaviour.DOWN, Behaviour.BLACKHOLE):
                raise _Invalid(f"{where}: 'throttle' needs a host that accepts connections")
            throttle = _throttle(raw["throttle"], f"{where}: throttle")
        flood_bytes = None
        if "flood_bytes" in raw:
            if behaviour not in _FLOODS:
                raise _Invalid(f"{where}: 'flood_bytes' applies to behaviours "
                               f"{', '.join(repr(b.value) for b in _FLOODS)} only")
            flood_bytes = raw["flood_bytes"]
            if not isinstance(flood_bytes, int) or isinstance(flood_bytes, bool) or (
                    flood_bytes < 1):
                raise _Invalid(f"{where}: flood_bytes must be a positive integer")
        aliases = tuple(_name(a, f"{where}: aliases")
                        for a in _list(raw.get("aliases", []), f"{where}.aliases"))

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
            rtt_ms=rtt_ms,
            throttle=throttle,
            flood_bytes=flood_bytes,
            aliases=aliases,
            accept_mail=accept_mail,
        )
        host = self.host_enforcement(host, raw, where)
        status, versions, error = self.host_expect(raw["expect"], where)
        implied = _implied_status(host)
        if status is not implied:
            raise _Invalid(f"{where}: expect.status is {status.value!r} but the host's "
                           f"settings give {implied.value!r}")
        # Only a host that completes handshakes has versions to find.
        implied_versions = host.versions if implied is HostStatus.STARTTLS else ()
        if versions != implied_versions:
            raise _Invalid(f"{where}: expect.versions is {list(versions)} but the host's "
                           f"settings give {list(implied_versions)}")
        expect = _table(raw["expect"], f"{where}: expect")
        webpki = _optional_choice(expect, "webpki", _WEBPKI_RESULTS, f"{where}: expect")
        implied_webpki = _implied_webpki(replace(host, expect_status=status))
        if webpki is not None and webpki != implied_webpki:
            raise _Invalid(f"{where}: expect.webpki is {webpki!r} but the host's settings give "
                           f"{implied_webpki!r}")
        dane = _optional_choice(expect, "dane", _DANE_HOST_OUTCOMES, f"{where}: expect")
        return replace(host, expect_status=status, expect_versions=versions,
                       expect_error=error, expect_webpki=webpki, expect_dane=dane)

    def host_enforcement(self, host: Host, raw: Mapping[str, Any], where: str) -> Host:
        """The certificate options and TLSA records of a host (module doc)."""
        names = tuple(_name(n, f"{where}: certificate_names")
                      for n in _list(raw.get("certificate_names", []),
                                     f"{where}: certificate_names"))
        if "certificate_names" in raw and not names:
            raise _Invalid(f"{where}: certificate_names is empty")
        key = _enum(CertificateKey, raw.get("certificate_key", "rsa2048"),
                    f"{where}: certificate_key")
        send_ca = _bool(raw.get("send_ca", False), f"{where}: send_ca")
        if send_ca and host.certificate is Certificate.SELF_SIGNED:
            raise _Invalid(f"{where}: a self-signed certificate has no CA to send")
        tlsa = tuple(_tlsa(t, f"{where}: tlsa", host.serves_tls)
                     for t in _list(raw.get("tlsa", []), f"{where}: tlsa"))
        if "tlsa" in raw and not tlsa:
            raise _Invalid(f"{where}: tlsa is empty; leave it out for a host without TLSA")
        if "tlsa_dnssec" in raw and not tlsa:
            raise _Invalid(f"{where}: tlsa_dnssec without tlsa records")
        dnssec = _enum(DnssecMode, raw.get("tlsa_dnssec", "signed"), f"{where}: tlsa_dnssec")
        return replace(host, certificate_names=names, certificate_key=key, send_ca=send_ca,
                       tlsa=tlsa, tlsa_dnssec=dnssec)

    def ip_literal_host(self, raw: dict[str, Any]) -> Host:
        name = str(ipaddress.IPv4Address(raw["name"]))
        where = f"host {name}"
        _keys(raw, where, required={"name", "addresses", "expect"})
        if _list(raw["addresses"], f"{where}.addresses"):
            raise _Invalid(f"{where}: an IP-literal MX target has no addresses of its own; "
                           "use addresses = []")
        status, versions, error = self.host_expect(raw["expect"], where)
        if status is not HostStatus.UNRESOLVED or versions:
            raise _Invalid(f"{where}: expect.status is {status.value!r} but an IP-literal MX "
                           "target gives 'unresolved'")
        return Host(name=name, addresses=(), behaviour=Behaviour.NORMAL, starttls=False,
                    tls_min=None, tls_max=None, ciphers=None, certificate=None,
                    software="Postfix", greeting=None, expect_status=status,
                    expect_versions=(), expect_error=error)

    def host_expect(self, raw: Any, where: str
                    ) -> tuple[HostStatus, tuple[str, ...], str | None]:
        raw = _table(raw, f"{where}: expect")
        _keys(raw, f"{where}: expect", required={"status"},
              optional={"versions", "error", "webpki", "dane"})
        status = _enum(HostStatus, raw["status"], f"{where}: expect.status")
        versions = tuple(
            _str(v, f"{where}: expect.versions") for v in _list(raw.get("versions", []),
                                                                f"{where}: expect.versions")
        )
        bad = [v for v in versions if v not in _LABEL_BY_NAME.values()]
        if bad:
            raise _Invalid(f"{where}: expect.versions has {bad[0]!r}; use labels like 'TLS 1.2'")
        error = _str(raw["error"], f"{where}: expect.error") if "error" in raw else None
        return status, versions, error

    def domain(self, index: int, raw: Any) -> Domain:
        where = f"domains[{index}]"
        raw = _table(raw, where)
        name = _name(raw.get("name"), f"{where}.name")
        where = f"domain {name}"
        _keys(raw, where, required={"name", "expect"},
              optional={"rank", "mx", "null_mx", "implicit_mx", "dns", "mixed_null_mx",
                        "dnssec", "tlsrpt", "mta_sts"})
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
        if kinds and dns not in _DNS_SERVING_RECORDS:
            raise _Invalid(f"{where}: dns = {dns.value!r} serves no records, so {kinds[0]} "
                           "makes no sense")
        mixed_null_mx = _bool(raw.get("mixed_null_mx", False), f"{where}: mixed_null_mx")
        if mixed_null_mx and not mx:
            raise _Invalid(f"{where}: mixed_null_mx needs mx records to mix with")
        expect = _table(raw["expect"], f"{where}: expect")
        _keys(expect, f"{where}: expect", required={"dns_status"},
              optional={"error", *DomainExpect.__dataclass_fields__})
        dns_status = _enum(DnsStatus, expect["dns_status"], f"{where}: expect.dns_status")
        error = _str(expect["error"], f"{where}: expect.error") if "error" in expect else None
        domain = Domain(name, rank, dns, mx, null_mx, implicit_mx, dns_status,
                        mixed_null_mx=mixed_null_mx, expect_error=error)
        implied = _implied_dns_status(domain)
        if dns_status is not implied:
            raise _Invalid(f"{where}: expect.dns_status is {dns_status.value!r} but the "
                           f"domain's settings give {implied.value!r}")
        return self.domain_enforcement(domain, raw, expect, where)

    def domain_enforcement(self, domain: Domain, raw: Mapping[str, Any],
                           expect: Mapping[str, Any], where: str) -> Domain:
        """A domain's DNSSEC mode, TLS-RPT and MTA-STS settings and their ground truth."""
        extra = {"dnssec", "tlsrpt", "mta_sts"} & raw.keys()
        if extra and domain.dns is not DnsMode.OK:
            raise _Invalid(f"{where}: {sorted(extra)[0]} needs dns = 'ok'")
        dnssec = _enum(DnssecMode, raw.get("dnssec", "signed"), f"{where}: dnssec")
        tlsrpt = tuple(_str(t, f"{where}: tlsrpt")
                       for t in _list(raw.get("tlsrpt", []), f"{where}: tlsrpt"))
        mta_sts = self.mta_sts(domain.name, raw["mta_sts"], where) if "mta_sts" in raw else None
        w = f"{where}: expect"
        lists = {k: tuple(_name(h, f"{w}.{k}") for h in _list(expect[k], f"{w}.{k}"))
                 for k in ("mta_sts_refused", "dane_refused") if k in expect}
        truth = DomainExpect(
            mta_sts=_optional_choice(expect, "mta_sts", _MTA_STS_VERDICTS, w),
            mta_sts_fetch=_optional_choice(expect, "mta_sts_fetch",
                                           tuple(s.value for s in FetchStatus), w),
            mta_sts_refused=lists.get("mta_sts_refused"),
            tlsrpt=_optional_choice(expect, "tlsrpt", tuple(s.value for s in RecordStatus), w),
            tlsrpt_rua=(tuple(_str(u, f"{w}.tlsrpt_rua") for u in _list(
                expect["tlsrpt_rua"], f"{w}.tlsrpt_rua")) if "tlsrpt_rua" in expect else None),
            dane=_optional_choice(expect, "dane", _DANE_VERDICTS, w),
            dane_refused=lists.get("dane_refused"),
            cert_matches_domain=(_bool(expect["cert_matches_domain"], f"{w}.cert_matches_domain")
                                 if "cert_matches_domain" in expect else None),
        )
        return replace(domain, dnssec=dnssec, tlsrpt=tlsrpt, mta_sts=mta_sts, expect=truth)

    @staticmethod
    def mta_sts(domain: str, raw: Any, where: str) -> MtaSts:
        where = f"{where}: mta_sts"
        raw = _table(raw, where)
        _keys(raw, where, optional={"txt", "address", "policy", "serve", "content_type",
                                    "certificate"})
        txt = tuple(_str(t, f"{where}.txt") for t in _list(raw.get("txt", []), f"{where}.txt"))
        address = _address(raw["address"], f"{where}.address") if "address" in raw else None
        if address == IPV6_LOOPBACK:
            raise _Invalid(f"{where}.address: the policy host needs an address in 127.0.0.0/8")
        serve = _enum(PolicyServe, raw.get("serve", "ok"), f"{where}.serve")
        certificate = _enum(Certificate, raw.get("certificate", "ca"), f"{where}.certificate")
        if certificate is Certificate.CLIENT_ONLY:
            raise _Invalid(f"{where}.certificate: 'client_only' is for SMTP hosts")
        content_type = _str(raw.get("content_type", "text/plain; charset=utf-8"),
                            f"{where}.content_type")
        if not re.fullmatch(r"[\x20-\x7e]+", content_type):
            raise _Invalid(f"{where}.content_type must be printable ASCII")
        return MtaSts(domain, txt, address, _str(raw.get("policy", ""), f"{where}.policy"), serve,
                      content_type, certificate)

    @staticmethod
    def mx_record(raw: Any, where: str) -> tuple[int, str]:
        if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int)
                and not isinstance(raw[0], bool) and 0 <= raw[0] <= 65535):
            raise _Invalid(f"{where}: each mx entry must be [preference 0-65535, \"host name\"]")
        if is_ip_address(raw[1], version=4):
            return raw[0], str(ipaddress.IPv4Address(raw[1]))
        return raw[0], _name(raw[1], f"{where}: mx host")

    @staticmethod
    def cross_check(hosts: list[Host], domains: list[Domain]) -> None:
        alias_of = {alias: h.name for h in hosts for alias in h.aliases}
        _no_duplicates((a for h in hosts for a in h.aliases), "alias")
        taken = sorted(set(alias_of) & ({h.name for h in hosts} | {d.name for d in domains}))
        if taken:
            raise _Invalid(f"alias {taken[0]!r}: a CNAME cannot share its name with a host or "
                           "domain")
        host_names = {h.name for h in hosts} | set(alias_of)
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
            used.update(alias_of[h] for h in domain.mail_hosts if h in alias_of)
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


_HOST_ENFORCEMENT_KEYS = frozenset({"certificate_names", "certificate_key", "send_ca", "tlsa",
                                    "tlsa_dnssec"})
_WEBPKI_RESULTS = tuple(r.value for r in list(TlsResult)[:6])
_DANE_HOST_OUTCOMES = ("authenticated", "encrypted", "opportunistic", "unreachable",
                       TlsResult.TLSA_INVALID.value, TlsResult.DNSSEC_INVALID.value,
                       TlsResult.STARTTLS_NOT_SUPPORTED.value)
_MTA_STS_VERDICTS = ("none", "invalid-record", "multiple-records", "dns-error", "fetch-failed",
                     "invalid-policy", "mode-none", "testing", "enforce-ok", "enforce-degraded",
                     "enforce-breaks", "enforce-unreachable")
_DANE_VERDICTS = ("none", "mx-insecure", "mx-bogus", "insecure", "ok", "unusable", "degraded",
                  "breaks", "unreachable")
_CERT_RESULTS: dict[Certificate, TlsResult] = {
    Certificate.CA: TlsResult.OK,
    Certificate.EXPIRED: TlsResult.CERTIFICATE_EXPIRED,
    Certificate.WRONG_NAME: TlsResult.CERTIFICATE_HOST_MISMATCH,
    Certificate.SELF_SIGNED: TlsResult.CERTIFICATE_NOT_TRUSTED,
    Certificate.UNTRUSTED: TlsResult.CERTIFICATE_NOT_TRUSTED,
    Certificate.CLIENT_ONLY: TlsResult.VALIDATION_FAILURE,
}


def _implied_webpki(host: Host) -> str | None:
    """The ``webpki_result`` a host's settings give (see :mod:`research.policy.pki` for the
    order)."""
    status = host.expect_status
    if status in (HostStatus.NO_STARTTLS, HostStatus.STARTTLS_REJECTED):
        return TlsResult.STARTTLS_NOT_SUPPORTED.value
    if status is HostStatus.TLS_FAILED:
        return TlsResult.VALIDATION_FAILURE.value
    if status is not HostStatus.STARTTLS or host.certificate is None:
        return None
    result = _CERT_RESULTS[host.certificate]
    if result is TlsResult.OK and not name_matches(host.name, list(host.leaf_names)):
        result = TlsResult.CERTIFICATE_HOST_MISMATCH
    return result.value


def _optional_choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...],
                     where: str) -> str | None:
    if key not in raw:
        return None
    value = raw[key]
    if value not in choices:
        raise _Invalid(f"{where}.{key} is {value!r}; expected one of "
                       + ", ".join(repr(c) for c in choices))
    return str(value)


_TLSA_RE = re.compile(r"(\d{1,3}) (\d{1,3}) (\d{1,3}) (match|mismatch|(?:[0-9a-f]{2})+)")


def _tlsa(raw: Any, where: str, serves_tls: bool) -> str:
    text = _str(raw, where).strip().lower()
    match = _TLSA_RE.fullmatch(text)
    if not match or max(int(match.group(i)) for i in (1, 2, 3)) > 255:
        raise _Invalid(f"{where}: {raw!r} is not 'usage selector matching-type data' with data "
                       "'match', 'mismatch' or hex")
    if match.group(4) == "match":
        if not serves_tls:
            raise _Invalid(f"{where}: 'match' needs a host that serves TLS")
        if int(match.group(2)) > 1 or int(match.group(3)) > 2:
            raise _Invalid(f"{where}: 'match' needs selector 0/1 and matching type 0/1/2")
    return text


def _implied_status(host: Host) -> HostStatus:
    if not host.addresses:
        return HostStatus.UNRESOLVED
    if host.behaviour is Behaviour.NORMAL:
        return HostStatus.STARTTLS if host.starttls else HostStatus.NO_STARTTLS
    return _IMPLIED_STATUS[host.behaviour]


def _implied_dns_status(domain: Domain) -> DnsStatus:
    if domain.dns is DnsMode.NXDOMAIN:
        return DnsStatus.NXDOMAIN
    if domain.dns not in _DNS_SERVING_RECORDS:
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


def _rtt(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 10_000:
        raise _Invalid(f"{where} must be a number of milliseconds from 0 to 10000")
    return float(raw)


def _throttle(raw: Any, where: str) -> Throttle:
    raw = _table(raw, where)
    _keys(raw, where, optional={"every", "after"})
    if len(raw) != 1:
        raise _Invalid(f"{where} needs exactly one of 'every' or 'after'")
    (key, value), = raw.items()
    lowest = 2 if key == "every" else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        # every = 1 (or after = 0) would refuse the first connection too, changing the
        # host's status; the ground truth must stay what the rest of the entry says.
        raise _Invalid(f"{where}.{key} must be an integer of at least {lowest}")
    return Throttle(**{key: value})


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
