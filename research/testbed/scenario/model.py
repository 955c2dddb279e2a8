"""What a scenario describes: its hosts, domains and policies, with the ground truth a correct
scan of them must find. The file format is documented in ``research/testbed/scenarios/README.md``
(the manual beside the shipped scenarios)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from research.store.schema import MAIL_DNS_STATUSES, DnsStatus, HostStatus

TLD = "test"
DNS_RESERVED_ADDRESS = "127.0.0.1"
"""Kept free for the DNS server; no SMTP host may use it."""
IPV6_LOOPBACK = "::1"

TLS_VERSION_NAMES: tuple[str, ...] = ("1.0", "1.1", "1.2", "1.3")
"""Versions a host can serve, oldest first (the ``tls_min``/``tls_max`` values)."""
_LABEL_BY_NAME = {name: f"TLS {name}" for name in TLS_VERSION_NAMES}
TLS_VERSION_LABELS: tuple[str, ...] = tuple(_LABEL_BY_NAME.values())
"""Their labels (``TLS 1.0``...), as the scan reports them."""


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
    SLOW = "slow"
    """Every answer for the name comes :data:`SLOW_ANSWER_S` late: a lookup that outlasts a
    probe, so that what a survey does before it has the answer can be seen."""


SLOW_ANSWER_S = 4.0
"""How late a ``slow`` name's answers come, seconds (below any query timeout the tests use)."""


DNS_SERVING_RECORDS = (DnsMode.OK, DnsMode.TRUNCATE, DnsMode.FLAKY, DnsMode.SLOW)
"""DNS modes in which the name's records are served (at all, or after a retry)."""
FLOODS = (Behaviour.ENDLESS_LINE, Behaviour.ENDLESS_CONTINUATION)
"""Behaviours that flood the client (``flood_bytes`` applies)."""


@dataclass(frozen=True)
class Throttle:
    """Which connections a throttling host refuses with ``421`` (the format's manual,
    ``research/testbed/scenarios/README.md``)."""

    every: int | None = None
    """Refuse every Nth connection (the Nth, 2Nth, ...)."""
    after: int | None = None
    """Refuse every connection after the first N."""

    def refuses(self, connection: int) -> bool:
        """Whether the ``connection``-th connection (counting from 1) gets the 421."""
        if self.every is not None and connection % self.every == 0:
            return True
        return self.after is not None and connection > self.after


class GreetAction(StrEnum):
    """What postscreen does to a client that talks before its greeting is complete
    (``postscreen_greet_action``)."""

    DROP = "drop"
    """Drop the connection at once with ``521 5.7.0`` (Postfix's text)."""
    IGNORE = "ignore"
    """Log it and carry on (Postfix's default)."""


@dataclass(frozen=True)
class Anvil:
    """Per-client limits as Postfix's anvil(8) keeps them for smtpd: connections from one client
    at once (``smtpd_client_connection_count_limit``) and connection attempts per time unit
    (``smtpd_client_connection_rate_limit`` per ``anvil_rate_time_unit``). A connection over
    either is greeted ``421 4.7.0 <host> Error: too many connections from <ip>`` and closed."""

    count_limit: int | None = None
    rate_limit: int | None = None
    rate_time_unit: float = 60.0
    """Seconds; the count of attempts starts over once this long has passed since the first
    attempt it counts (anvil's fixed window; refused attempts count too)."""


@dataclass(frozen=True)
class Postscreen:
    """Postfix postscreen's pregreet test (``postscreen_greet_banner``): the greeting's first
    line ``220-<banner>`` at once, its last line ``220 <banner>`` only after ``greet_wait``
    seconds; a client that talks in between fails the test. A client that passed is not tested
    again for ``greet_ttl`` seconds (``postscreen_greet_ttl``)."""

    greet_wait: float = 6.0
    greet_action: GreetAction = GreetAction.DROP
    greet_ttl: float = 86400.0


@dataclass(frozen=True)
class SharedLimit:
    """Per-client limits shared by several addresses, as a provider's edge enforces them across
    its fleet: connections from one client to any of ``addresses`` at once, and per time unit.
    Over the limit, the connection is greeted ``421 4.3.2 The maximum number of concurrent
    server connections has exceeded a limit, closing transmission channel`` (Exchange's text)
    and closed."""

    name: str
    addresses: tuple[str, ...]
    limits: Anvil


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
    """The leaf's DNS names; empty for the default (the format's manual,
    ``research/testbed/scenarios/README.md``)."""
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
    anvil: Anvil | None = None
    postscreen: Postscreen | None = None
    greet_delay: float | None = None
    """Seconds the greeting is held back (Sendmail's ``greet_pause``); a client that talks
    meanwhile is greeted ``554 <host> ESMTP not accepting messages``."""

    def server(self) -> tuple[object, ...]:
        """What the SMTP server on the host's addresses is, apart from its certificates (the
        :data:`SERVER_FIELDS`): hosts that share an address must agree on it, since one server
        answers for all their names."""
        return tuple(getattr(self, name) for name in SERVER_FIELDS)

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


SERVER_FIELDS = ("behaviour", "starttls", "tls_min", "tls_max", "ciphers", "software", "greeting",
                 "rtt_ms", "throttle", "flood_bytes", "accept_mail", "anvil", "postscreen",
                 "greet_delay")
"""The :class:`Host` fields that describe its server rather than its name."""


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
    shared_limits: tuple[SharedLimit, ...] = ()

    def hosts_at(self, address: str) -> tuple[Host, ...]:
        """The hosts whose names point at ``address``, by name; the first one's server answers
        there (see :meth:`Host.server`)."""
        return tuple(sorted((h for h in self.hosts if address in h.addresses),
                            key=lambda h: h.name))

    def addresses(self) -> list[str]:
        """Every SMTP address, each once, in the order its first host lists it."""
        return list(dict.fromkeys(ip for h in self.hosts for ip in h.addresses))

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
            if domain.expect_dns_status not in MAIL_DNS_STATUSES:
                continue
            hosts = [by_name[n] for n in domain.mail_hosts]
            tls_hosts = [h for h in hosts if h.expect_status is HostStatus.STARTTLS]
            if not tls_hosts:
                no_starttls += any(h.expect_status is HostStatus.NO_STARTTLS for h in hosts)
            elif not any({"TLS 1.2", "TLS 1.3"} & set(h.expect_versions) for h in tls_hosts):
                no_tls_1_2 += 1
        return Counts(len(self.domains), no_starttls, no_tls_1_2)
