"""A survey's settings: one frozen, validated object, and every default in one place.

:class:`SurveySettings` is what ``run_survey(domains, out, settings)`` runs with; its
:class:`ProbeSettings` part is what a task carries to wherever a host is probed (a thread here,
a Dask worker elsewhere), so it holds only plain, picklable values. Both check their values when
made and raise :class:`~research.errors.InputError` with a one-line message, so a bad option
fails before any packet is sent. The CLI, the testbed (``Testbed.settings()``), the benchmarks
and the tests all build settings here; nothing else holds a default.

No side effects on import: nothing is created or read here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from research.errors import InputError
from research.policy.mtasts import HTTPS_PORT
from research.store.licenses import license_entry
from research.store.schema import Engine

RESULTS_DIR = Path("results")
"""Default parent of output directories (``results/demo-isc-2019``, ``results/my-mail-server``):
``results/`` under the current directory, wherever the package is installed."""

DEFAULT_PORT = 25
DEFAULT_TIMEOUT = 10.0
"""Seconds for one network operation (connect, one SMTP reply, one DNS query, one HTTPS read)."""
DEFAULT_CONCURRENCY = 10
"""Addresses probed at the same time (and MTA-STS policy fetches in flight)."""
DEFAULT_DNS_CONCURRENCY = 32
"""DNS lookups in flight (MX, addresses, TLSA): each waits on a resolver, not on a mail server,
so a list of thousands of domains needs more of them than it needs probes."""
DEFAULT_PER_HOST_CONNECTIONS = 2
"""Concurrent connections to any one address (IP, port), however many MX names point at it;
fewer once it refuses more (:mod:`research.scan.limits`). Mail servers throttle scanners."""
DEFAULT_EHLO_NAME = "starttls-survey.invalid"
"""Identifies the scanner in EHLO; live surveys should pass a name that resolves to them."""
DEFAULT_RETRIES = 3
"""Extra attempts of a session the address did not answer at all (a timeout) before the address
is given up; a ``421`` or a refused or reset connection is a limit to learn, not a failure."""
DEFAULT_BACKOFF = 5.0
"""Seconds an address is paused after a session it refused or did not answer; doubles with each
refusal in a row."""
DEFAULT_GREETING_TIMEOUT = 60.0
"""Seconds to wait for the whole SMTP greeting. RFC 5321 §4.5.3.2.1 gives it five minutes;
greet pauses (Sendmail's ``greet_pause``, Postfix's postscreen) hold it back for seconds."""
DEFAULT_HOST_BUDGET = 600.0
"""Seconds an address (and each further MX name on it) is given before what is still open is
reported undecided. Addresses are probed in parallel, so patience with one costs little."""
DEFAULT_PER_PROVIDER_CONNECTIONS = 8
"""Connections in flight to one provider (the registrable domain of the MX names), across all
its addresses: a provider's fleet shares its limits."""
DEFAULT_PROVIDER_RATE = 10.0
"""New sessions per second to one provider, across all its addresses."""
DNS_RETRIES = 2
"""Extra attempts after a temporary DNS failure (SERVFAIL, timeout)."""
DEFAULT_MTA_STS_PORT = HTTPS_PORT
"""Where MTA-STS policy hosts are asked (RFC 8461 §3.3: HTTPS)."""


def _port(value: int, what: str) -> None:
    if not 0 < value < 65536:
        raise InputError(f"{what} must be 1..65535, not {value}")


def _at_least(value: float, least: float, what: str) -> None:
    if value < least:
        raise InputError(f"{what} must be at least {least:g}, not {value:g}")


@dataclass(frozen=True)
class ProbeSettings:
    """How each address (IP, port) is probed for its MX names: the SMTP session, the TLS scan
    (RFC 3207 STARTTLS), and the limits every session to it and to its provider keeps to.

    Picklable, so a task carries it to another process or machine.
    """

    port: int = DEFAULT_PORT
    """SMTP port (25 in a live survey)."""
    ehlo_name: str = DEFAULT_EHLO_NAME
    timeout: float = DEFAULT_TIMEOUT
    """Seconds for one network operation; a whole SMTP session gets four times as long."""
    per_host_connections: int = DEFAULT_PER_HOST_CONNECTIONS
    engine: Engine = Engine.FULL
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    trust_ca: str | None = None
    """Extra PEM roots for judging certificates (``--trust-ca``), as a path every worker reads."""
    greeting_timeout: float = DEFAULT_GREETING_TIMEOUT
    """Seconds for the whole greeting; the rest of a session has four ``timeout`` periods."""
    host_budget: float = DEFAULT_HOST_BUDGET
    per_provider_connections: int = DEFAULT_PER_PROVIDER_CONNECTIONS
    provider_rate: float = DEFAULT_PROVIDER_RATE

    def __post_init__(self) -> None:
        _port(self.port, "port")
        if not self.timeout > 0:
            raise InputError(f"timeout must be positive, not {self.timeout:g}")
        _at_least(self.per_host_connections, 1, "per-host connections")
        if not self.ehlo_name or any(c.isspace() for c in self.ehlo_name):
            raise InputError(f"EHLO name must be one word, not {self.ehlo_name!r}")
        try:
            object.__setattr__(self, "engine", Engine(self.engine))
        except ValueError:
            raise InputError(f"engine must be one of {', '.join(e.value for e in Engine)}, "
                             f"not {self.engine!r}") from None
        _at_least(self.retries, 0, "retries")
        _at_least(self.backoff, 0, "backoff")
        for value, what in ((self.greeting_timeout, "greeting timeout"),
                            (self.host_budget, "host budget"),
                            (self.provider_rate, "provider rate")):
            if not value > 0:
                raise InputError(f"{what} must be positive, not {value:g}")
        _at_least(self.per_provider_connections, 1, "per-provider connections")
        if self.trust_ca is not None:
            object.__setattr__(self, "trust_ca", str(self.trust_ca))


@dataclass(frozen=True)
class SurveySettings:
    """Everything a survey runs with, but the per-run choices (``resume``, progress bars, where
    the host probes run). ``meta.json`` records it under ``options`` (see :meth:`as_options`).

    Build it from option names as the CLI spells them (``SurveySettings.build(port=2525,
    timeout=3)``), or from a testbed (``Testbed.settings()``); :meth:`replace` changes any of them.
    """

    probe: ProbeSettings = field(default_factory=ProbeSettings)
    resolvers: tuple[str, ...] = ()
    """DNS servers to ask, ``IP[:PORT]``; empty for the system's (``/etc/resolv.conf``)."""
    dns_retries: int = DNS_RETRIES
    concurrency: int = DEFAULT_CONCURRENCY
    """Addresses probed at the same time (and MTA-STS policy fetches in flight)."""
    dns_concurrency: int = DEFAULT_DNS_CONCURRENCY
    mta_sts_port: int = DEFAULT_MTA_STS_PORT
    dnssec_anchor: str | None = None
    """A file of DS/DNSKEY trust anchors: DNSSEC is then validated here rather than taken from
    the resolver's AD bit (:mod:`research.scan.dnssec`)."""
    opt_out: str | None = None
    """An opt-out list file (:mod:`research.scan.optout`): what it covers is never contacted."""
    license: str | None = None
    """The licence the survey's data are published under (``--license``: an SPDX identifier or
    the licence's address), for its ``datapackage.json``; none by default, since the data
    describe other people's servers."""

    def __post_init__(self) -> None:
        if isinstance(self.resolvers, str):
            raise InputError("resolvers must be a list of IP[:PORT], not one string")
        object.__setattr__(self, "resolvers", tuple(str(r) for r in self.resolvers))
        _at_least(self.dns_retries, 0, "DNS retries")
        _at_least(self.concurrency, 1, "concurrency")
        _at_least(self.dns_concurrency, 1, "DNS concurrency")
        _port(self.mta_sts_port, "MTA-STS port")
        for name in ("dnssec_anchor", "opt_out"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))
        if self.license is not None:
            license_entry(self.license)  # raises InputError for what is no licence
            object.__setattr__(self, "license", self.license.strip())

    @property
    def timeout(self) -> float:
        return self.probe.timeout

    @property
    def trust_ca(self) -> str | None:
        return self.probe.trust_ca

    @classmethod
    def build(cls, **options: Any) -> SurveySettings:
        """Settings from option names (each field of this class or of :class:`ProbeSettings`);
        the rest keep their defaults. Raises InputError for an unknown name or a bad value."""
        return cls().replace(**options)

    def replace(self, **options: Any) -> SurveySettings:
        """These settings with some options changed, by name as in :meth:`build`."""
        unknown = set(options) - _PROBE_FIELDS - _SURVEY_FIELDS
        if unknown:
            raise InputError(f"unknown survey option(s): {', '.join(sorted(unknown))}")
        probe = {k: v for k, v in options.items() if k in _PROBE_FIELDS}
        mine = {k: v for k, v in options.items() if k in _SURVEY_FIELDS}
        return replace(self, probe=replace(self.probe, **probe), **mine)

    def as_options(self) -> dict[str, Any]:
        """Every option by name, one flat JSON-able dict (``meta.json``'s ``options``)."""
        flat = {k: v for k, v in asdict(self).items() if k != "probe"}
        flat.update(asdict(self.probe))
        flat["engine"] = self.probe.engine.value
        flat["resolvers"] = list(self.resolvers)
        return flat


_PROBE_FIELDS = frozenset(f.name for f in fields(ProbeSettings))
_SURVEY_FIELDS = frozenset(f.name for f in fields(SurveySettings)) - {"probe"}
assert not _PROBE_FIELDS & _SURVEY_FIELDS, "option names must be unique across the parts"
