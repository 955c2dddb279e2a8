"""The scenario file's parser: every key checked, every rule of the format enforced, each broken
rule a one-line message naming the entry (the format's manual is
``research/testbed/scenarios/README.md``)."""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from research.policy.names import is_ip_address
from research.store.schema import DnsStatus, FetchStatus, HostStatus, RecordStatus
from research.testbed.scenario.model import (
    DNS_RESERVED_ADDRESS,
    DNS_SERVING_RECORDS,
    FLOODS,
    IPV6_LOOPBACK,
    SERVER_FIELDS,
    TLD,
    TLS_VERSION_LABELS,
    TLS_VERSION_NAMES,
    Anvil,
    Behaviour,
    Certificate,
    CertificateKey,
    Counts,
    DnsMode,
    DnssecMode,
    Domain,
    DomainExpect,
    GreetAction,
    Host,
    MtaSts,
    PolicyServe,
    Postscreen,
    Scenario,
    SharedLimit,
    Throttle,
)
from research.testbed.scenario.truth import (
    DANE_HOST_OUTCOMES,
    DANE_VERDICTS,
    MTA_STS_VERDICTS,
    WEBPKI_RESULTS,
    implied_dns_status,
    implied_status,
    implied_webpki,
)

_E = TypeVar("_E", bound=Enum)


class Invalid(Exception):
    """A rule broken somewhere in the file; becomes a ScenarioError with the file's name."""


_NAME_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+" + TLD)


class Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def scenario(self, raw: Mapping[str, Any]) -> Scenario:
        _keys(raw, "top level", required={"domains"},
              optional={"scenario", "hosts", "shared_limits"})
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
        _shared_servers(hosts)
        policies = [d.mta_sts for d in domains if d.mta_sts is not None]
        _no_duplicates([*dict.fromkeys(ip for h in hosts for ip in h.addresses),
                        *(p.address for p in policies if p.address)], "address")
        shared = tuple(self.shared_limit(i, r, hosts) for i, r in
                       enumerate(_list(raw.get("shared_limits", []), "shared_limits")))
        _no_duplicates((s.name for s in shared), "shared limit name")
        _no_duplicates((ip for s in shared for ip in s.addresses), "shared-limit address")
        clash = sorted({p.host for p in policies} & {h.name for h in hosts})
        if clash:
            raise Invalid(f"host {clash[0]}: the name is the MTA-STS policy host of a domain")
        if not domains:
            raise Invalid("no [[domains]]")
        self.cross_check(hosts, domains)
        scenario = Scenario(
            name=name,
            description=description,
            path=self.path,
            hosts=tuple(hosts),
            domains=tuple(sorted(domains, key=lambda d: d.rank)),
            rtt_ms=rtt_ms,
            shared_limits=shared,
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
                      "rtt_ms", "throttle", "anvil", "postscreen", "greet_delay",
                      *_HOST_ENFORCEMENT_KEYS},
        )
        addresses = tuple(_address(a, f"{where}: addresses")
                          for a in _list(raw["addresses"], f"{where}.addresses"))
        _no_duplicates(addresses, f"{where}: address")
        behaviour = _enum(Behaviour, raw.get("behaviour", "normal"), f"{where}: behaviour")
        normal = behaviour is Behaviour.NORMAL
        if "starttls" in raw and not normal:
            raise Invalid(f"{where}: 'starttls' applies to behaviour 'normal' only")
        starttls = _bool(raw.get("starttls", True), f"{where}: starttls") and normal
        tls_keys = {"tls_min", "tls_max", "ciphers", "certificate", "certificate_names",
                    "certificate_key", "send_ca"} & raw.keys()
        if tls_keys and not starttls:
            raise Invalid(f"{where}: {sorted(tls_keys)[0]!r} needs behaviour 'normal' with "
                           "starttls = true")
        tls_min = tls_max = ciphers = certificate = None
        if starttls:
            tls_min = _version(raw.get("tls_min", "1.2"), f"{where}: tls_min")
            tls_max = _version(raw.get("tls_max", "1.3"), f"{where}: tls_max")
            if TLS_VERSION_NAMES.index(tls_min) > TLS_VERSION_NAMES.index(tls_max):
                raise Invalid(f"{where}: tls_min {tls_min} is newer than tls_max {tls_max}")
            if "ciphers" in raw:
                if tls_min == "1.3":
                    raise Invalid(f"{where}: 'ciphers' has no effect on a TLS 1.3-only host")
                ciphers = _ciphers(raw["ciphers"], f"{where}: ciphers")
            certificate = _enum(Certificate, raw.get("certificate", "ca"), f"{where}: certificate")
        greeting = None
        if behaviour is Behaviour.GREETING_ERROR:
            if "greeting" not in raw:
                raise Invalid(f"{where}: behaviour 'greeting_error' needs a 'greeting'")
            greeting = _str(raw["greeting"], f"{where}: greeting")
            if not re.fullmatch(r"[45]\d\d[ -][\x20-\x7e]*", greeting):
                raise Invalid(f"{where}: greeting must be one line starting with a 4xx/5xx code")
        elif "greeting" in raw:
            raise Invalid(f"{where}: 'greeting' applies to behaviour 'greeting_error' only")
        accept_mail = _bool(raw.get("accept_mail", False), f"{where}: accept_mail")
        if accept_mail and not normal:
            raise Invalid(f"{where}: 'accept_mail' applies to behaviour 'normal' only")
        software = _str(raw.get("software", "Postfix"), f"{where}: software")
        if not re.fullmatch(r"[\x20-\x7e]+", software):
            raise Invalid(f"{where}: software must be printable ASCII")
        rtt_ms = _rtt(raw["rtt_ms"], f"{where}: rtt_ms") if "rtt_ms" in raw else None
        throttle = None
        if "throttle" in raw:
            if behaviour in (Behaviour.DOWN, Behaviour.BLACKHOLE):
                raise Invalid(f"{where}: 'throttle' needs a host that accepts connections")
            throttle = _throttle(raw["throttle"], f"{where}: throttle")
        flood_bytes = None
        if "flood_bytes" in raw:
            if behaviour not in FLOODS:
                raise Invalid(f"{where}: 'flood_bytes' applies to behaviours "
                               f"{', '.join(repr(b.value) for b in FLOODS)} only")
            flood_bytes = raw["flood_bytes"]
            if not isinstance(flood_bytes, int) or isinstance(flood_bytes, bool) or (
                    flood_bytes < 1):
                raise Invalid(f"{where}: flood_bytes must be a positive integer")
        aliases = tuple(_name(a, f"{where}: aliases")
                        for a in _list(raw.get("aliases", []), f"{where}.aliases"))
        speaks = behaviour not in (Behaviour.DOWN, Behaviour.BLACKHOLE, Behaviour.TARPIT)
        greeting_keys = {"anvil", "postscreen", "greet_delay"} & raw.keys()
        if greeting_keys and not speaks:
            raise Invalid(f"{where}: {sorted(greeting_keys)[0]!r} needs a host that greets")
        anvil = _anvil(raw["anvil"], f"{where}: anvil") if "anvil" in raw else None
        postscreen = (_postscreen(raw["postscreen"], f"{where}: postscreen")
                      if "postscreen" in raw else None)
        greet_delay = (_seconds(raw["greet_delay"], f"{where}: greet_delay", most=600)
                       if "greet_delay" in raw else None)
        if postscreen is not None and greet_delay is not None:
            raise Invalid(f"{where}: postscreen and greet_delay exclude each other")

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
            anvil=anvil,
            postscreen=postscreen,
            greet_delay=greet_delay,
        )
        host = self.host_enforcement(host, raw, where)
        status, versions, error = self.host_expect(raw["expect"], where)
        implied = implied_status(host)
        if status is not implied:
            raise Invalid(f"{where}: expect.status is {status.value!r} but the host's "
                           f"settings give {implied.value!r}")
        # Only a host that completes handshakes has versions to find.
        implied_versions = host.versions if implied is HostStatus.STARTTLS else ()
        if versions != implied_versions:
            raise Invalid(f"{where}: expect.versions is {list(versions)} but the host's "
                           f"settings give {list(implied_versions)}")
        expect = _table(raw["expect"], f"{where}: expect")
        webpki = _optional_choice(expect, "webpki", WEBPKI_RESULTS, f"{where}: expect")
        derived_webpki = implied_webpki(replace(host, expect_status=status))
        if webpki is not None and webpki != derived_webpki:
            raise Invalid(f"{where}: expect.webpki is {webpki!r} but the host's settings give "
                          f"{derived_webpki!r}")
        dane = _optional_choice(expect, "dane", DANE_HOST_OUTCOMES, f"{where}: expect")
        return replace(host, expect_status=status, expect_versions=versions,
                       expect_error=error, expect_webpki=webpki, expect_dane=dane)

    def host_enforcement(self, host: Host, raw: Mapping[str, Any], where: str) -> Host:
        """The certificate options and TLSA records of a host (module doc)."""
        names = tuple(_certificate_name(n, f"{where}: certificate_names")
                      for n in _list(raw.get("certificate_names", []),
                                     f"{where}: certificate_names"))
        if "certificate_names" in raw and not names:
            raise Invalid(f"{where}: certificate_names is empty")
        key = _enum(CertificateKey, raw.get("certificate_key", "rsa2048"),
                    f"{where}: certificate_key")
        send_ca = _bool(raw.get("send_ca", False), f"{where}: send_ca")
        if send_ca and host.certificate is Certificate.SELF_SIGNED:
            raise Invalid(f"{where}: a self-signed certificate has no CA to send")
        tlsa = tuple(_tlsa(t, f"{where}: tlsa", host.serves_tls)
                     for t in _list(raw.get("tlsa", []), f"{where}: tlsa"))
        if "tlsa" in raw and not tlsa:
            raise Invalid(f"{where}: tlsa is empty; leave it out for a host without TLSA")
        if "tlsa_dnssec" in raw and not tlsa:
            raise Invalid(f"{where}: tlsa_dnssec without tlsa records")
        dnssec = _enum(DnssecMode, raw.get("tlsa_dnssec", "signed"), f"{where}: tlsa_dnssec")
        return replace(host, certificate_names=names, certificate_key=key, send_ca=send_ca,
                       tlsa=tlsa, tlsa_dnssec=dnssec)

    def ip_literal_host(self, raw: dict[str, Any]) -> Host:
        name = str(ipaddress.IPv4Address(raw["name"]))
        where = f"host {name}"
        _keys(raw, where, required={"name", "addresses", "expect"})
        if _list(raw["addresses"], f"{where}.addresses"):
            raise Invalid(f"{where}: an IP-literal MX target has no addresses of its own; "
                           "use addresses = []")
        status, versions, error = self.host_expect(raw["expect"], where)
        if status is not HostStatus.UNRESOLVED or versions:
            raise Invalid(f"{where}: expect.status is {status.value!r} but an IP-literal MX "
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
        bad = [v for v in versions if v not in TLS_VERSION_LABELS]
        if bad:
            raise Invalid(f"{where}: expect.versions has {bad[0]!r}; use labels like 'TLS 1.2'")
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
            raise Invalid(f"{where}: rank must be a positive integer")
        dns = _enum(DnsMode, raw.get("dns", "ok"), f"{where}: dns")
        null_mx = _bool(raw.get("null_mx", False), f"{where}: null_mx")
        implicit_mx = _bool(raw.get("implicit_mx", False), f"{where}: implicit_mx")
        mx = tuple(self.mx_record(r, where) for r in _list(raw.get("mx", []), f"{where}.mx"))
        if "mx" in raw and not mx:
            raise Invalid(f"{where}: mx is empty; leave it out for a domain without MX")
        kinds = [k for k, on in (("mx", bool(mx)), ("null_mx", null_mx),
                                 ("implicit_mx", implicit_mx)) if on]
        if len(kinds) > 1:
            raise Invalid(f"{where}: {kinds[0]} and {kinds[1]} exclude each other")
        if kinds and dns not in DNS_SERVING_RECORDS:
            raise Invalid(f"{where}: dns = {dns.value!r} serves no records, so {kinds[0]} "
                           "makes no sense")
        mixed_null_mx = _bool(raw.get("mixed_null_mx", False), f"{where}: mixed_null_mx")
        if mixed_null_mx and not mx:
            raise Invalid(f"{where}: mixed_null_mx needs mx records to mix with")
        expect = _table(raw["expect"], f"{where}: expect")
        _keys(expect, f"{where}: expect", required={"dns_status"},
              optional={"error", *DomainExpect.__dataclass_fields__})
        dns_status = _enum(DnsStatus, expect["dns_status"], f"{where}: expect.dns_status")
        error = _str(expect["error"], f"{where}: expect.error") if "error" in expect else None
        domain = Domain(name, rank, dns, mx, null_mx, implicit_mx, dns_status,
                        mixed_null_mx=mixed_null_mx, expect_error=error)
        implied = implied_dns_status(domain)
        if dns_status is not implied:
            raise Invalid(f"{where}: expect.dns_status is {dns_status.value!r} but the "
                           f"domain's settings give {implied.value!r}")
        return self.domain_enforcement(domain, raw, expect, where)

    def domain_enforcement(self, domain: Domain, raw: Mapping[str, Any],
                           expect: Mapping[str, Any], where: str) -> Domain:
        """A domain's DNSSEC mode, TLS-RPT and MTA-STS settings and their ground truth."""
        extra = {"dnssec", "tlsrpt", "mta_sts"} & raw.keys()
        if extra and domain.dns is not DnsMode.OK:
            raise Invalid(f"{where}: {sorted(extra)[0]} needs dns = 'ok'")
        dnssec = _enum(DnssecMode, raw.get("dnssec", "signed"), f"{where}: dnssec")
        tlsrpt = tuple(_str(t, f"{where}: tlsrpt")
                       for t in _list(raw.get("tlsrpt", []), f"{where}: tlsrpt"))
        mta_sts = self.mta_sts(domain.name, raw["mta_sts"], where) if "mta_sts" in raw else None
        w = f"{where}: expect"
        lists = {k: tuple(_name(h, f"{w}.{k}") for h in _list(expect[k], f"{w}.{k}"))
                 for k in ("mta_sts_refused", "dane_refused") if k in expect}
        truth = DomainExpect(
            mta_sts=_optional_choice(expect, "mta_sts", MTA_STS_VERDICTS, w),
            mta_sts_fetch=_optional_choice(expect, "mta_sts_fetch",
                                           tuple(s.value for s in FetchStatus), w),
            mta_sts_refused=lists.get("mta_sts_refused"),
            tlsrpt=_optional_choice(expect, "tlsrpt", tuple(s.value for s in RecordStatus), w),
            tlsrpt_rua=(tuple(_str(u, f"{w}.tlsrpt_rua") for u in _list(
                expect["tlsrpt_rua"], f"{w}.tlsrpt_rua")) if "tlsrpt_rua" in expect else None),
            dane=_optional_choice(expect, "dane", DANE_VERDICTS, w),
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
            raise Invalid(f"{where}.address: the policy host needs an address in 127.0.0.0/8")
        serve = _enum(PolicyServe, raw.get("serve", "ok"), f"{where}.serve")
        certificate = _enum(Certificate, raw.get("certificate", "ca"), f"{where}.certificate")
        if certificate is Certificate.CLIENT_ONLY:
            raise Invalid(f"{where}.certificate: 'client_only' is for SMTP hosts")
        content_type = _str(raw.get("content_type", "text/plain; charset=utf-8"),
                            f"{where}.content_type")
        if not re.fullmatch(r"[\x20-\x7e]+", content_type):
            raise Invalid(f"{where}.content_type must be printable ASCII")
        return MtaSts(domain, txt, address, _str(raw.get("policy", ""), f"{where}.policy"), serve,
                      content_type, certificate)

    @staticmethod
    def shared_limit(index: int, raw: Any, hosts: list[Host]) -> SharedLimit:
        where = f"shared_limits[{index}]"
        raw = _table(raw, where)
        _keys(raw, where, required={"name", "addresses"},
              optional={"count_limit", "rate_limit", "rate_time_unit"})
        name = _str(raw["name"], f"{where}.name")
        where = f"shared limit {name!r}"
        addresses = tuple(_address(a, f"{where}: addresses")
                          for a in _list(raw["addresses"], f"{where}.addresses"))
        if len(addresses) < 2:
            raise Invalid(f"{where}: a shared limit needs at least two addresses")
        known = {ip for h in hosts for ip in h.addresses}
        stray = [a for a in addresses if a not in known]
        if stray:
            raise Invalid(f"{where}: {stray[0]} is no host's address")
        limits = _anvil({k: v for k, v in raw.items() if k not in ("name", "addresses")},
                        where)
        return SharedLimit(name, addresses, limits)

    @staticmethod
    def mx_record(raw: Any, where: str) -> tuple[int, str]:
        if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int)
                and not isinstance(raw[0], bool) and 0 <= raw[0] <= 65535):
            raise Invalid(f"{where}: each mx entry must be [preference 0-65535, \"host name\"]")
        if is_ip_address(raw[1], version=4):
            return raw[0], str(ipaddress.IPv4Address(raw[1]))
        return raw[0], _name(raw[1], f"{where}: mx host")

    @staticmethod
    def cross_check(hosts: list[Host], domains: list[Domain]) -> None:
        alias_of = {alias: h.name for h in hosts for alias in h.aliases}
        _no_duplicates((a for h in hosts for a in h.aliases), "alias")
        taken = sorted(set(alias_of) & ({h.name for h in hosts} | {d.name for d in domains}))
        if taken:
            raise Invalid(f"alias {taken[0]!r}: a CNAME cannot share its name with a host or "
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
                    raise Invalid(f"{where}: {what} {target!r} that is not defined")
            used.update(domain.mail_hosts)
            used.update(alias_of[h] for h in domain.mail_hosts if h in alias_of)
            if domain.dns is DnsMode.OK and not domain.mx and not domain.null_mx and (
                    not domain.implicit_mx and domain.name in host_names):
                raise Invalid(f"{where}: has address records (a host of the same name) but no "
                               "mx; set implicit_mx = true")
            if domain.dns is DnsMode.NXDOMAIN:
                below = sorted(n for n in existing
                               if n == domain.name or n.endswith("." + domain.name))
                if below:
                    raise Invalid(f"{where}: dns = 'nxdomain' but {below[0]!r} exists "
                                   "at or below it")
        unused = sorted(host_names - used)
        if unused:
            raise Invalid(f"host {unused[0]}: not used by any domain")

    @staticmethod
    def check_counts(scenario: Scenario, raw: Any) -> None:
        if raw is None:
            return
        raw = _table(raw, "[scenario.expect]")
        _keys(raw, "[scenario.expect]", optional=set(Counts.__dataclass_fields__))
        derived = scenario.counts()
        for key, value in raw.items():
            if getattr(derived, key) != value:
                raise Invalid(f"[scenario.expect] {key} = {value!r}, but the hosts and domains "
                               f"give {getattr(derived, key)}")


_HOST_ENFORCEMENT_KEYS = frozenset({"certificate_names", "certificate_key", "send_ca", "tlsa",
                                    "tlsa_dnssec"})
def _optional_choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...],
                     where: str) -> str | None:
    if key not in raw:
        return None
    value = raw[key]
    if value not in choices:
        raise Invalid(f"{where}.{key} is {value!r}; expected one of "
                      + ", ".join(repr(c) for c in choices))
    return str(value)


_TLSA_RE = re.compile(r"(\d{1,3}) (\d{1,3}) (\d{1,3}) (match|mismatch|(?:[0-9a-f]{2})+)")


def _tlsa(raw: Any, where: str, serves_tls: bool) -> str:
    text = _str(raw, where).strip().lower()
    match = _TLSA_RE.fullmatch(text)
    if not match or max(int(match.group(i)) for i in (1, 2, 3)) > 255:
        raise Invalid(f"{where}: {raw!r} is not 'usage selector matching-type data' with data "
                       "'match', 'mismatch' or hex")
    if match.group(4) == "match":
        if not serves_tls:
            raise Invalid(f"{where}: 'match' needs a host that serves TLS")
        if int(match.group(2)) > 1 or int(match.group(3)) > 2:
            raise Invalid(f"{where}: 'match' needs selector 0/1 and matching type 0/1/2")
    return text


def _keys(raw: Mapping[str, Any], where: str, *, required: Iterable[str] = (),
          optional: Iterable[str] = ()) -> None:
    required = set(required)
    missing = sorted(required - raw.keys())
    if missing:
        raise Invalid(f"{where}: missing key {missing[0]!r}")
    unknown = sorted(raw.keys() - required - set(optional))
    if unknown:
        raise Invalid(f"{where}: unknown key {unknown[0]!r}")


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Invalid(f"{where} must be a table")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise Invalid(f"{where} must be an array")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise Invalid(f"{where} must be a string")
    return raw


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise Invalid(f"{where} must be true or false")
    return raw


def _enum(cls: type[_E], raw: Any, where: str) -> _E:
    try:
        return cls(raw)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)
        raise Invalid(f"{where} is {raw!r}; expected one of {choices}") from None


def _name(raw: Any, where: str) -> str:
    name = _str(raw, where).lower().rstrip(".")
    if len(name) > 253 or not _NAME_RE.fullmatch(name):
        raise Invalid(f"{where} {raw!r} is not a host name under .{TLD}")
    return name


def _address(raw: Any, where: str) -> str:
    text = _str(raw, where)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{where}: {text!r} is not an IP address") from None
    if ip.version == 6:
        if ip != ipaddress.IPv6Address(IPV6_LOOPBACK):
            raise Invalid(f"{where}: {text} is not loopback; the only IPv6 address is ::1")
        return IPV6_LOOPBACK
    if not ip.is_loopback or str(ip) in (DNS_RESERVED_ADDRESS, "127.0.0.0", "127.255.255.255"):
        raise Invalid(f"{where}: {text} must be in 127.0.0.0/8, not 127.0.0.1 (kept for DNS)")
    return str(ip)


def _version(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or raw not in TLS_VERSION_NAMES:
        raise Invalid(f"{where} is {raw!r}; expected one of "
                       + ", ".join(f'"{v}"' for v in TLS_VERSION_NAMES))
    return str(raw)


def _rtt(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 10_000:
        raise Invalid(f"{where} must be a number of milliseconds from 0 to 10000")
    return float(raw)


def _throttle(raw: Any, where: str) -> Throttle:
    raw = _table(raw, where)
    _keys(raw, where, optional={"every", "after"})
    if len(raw) != 1:
        raise Invalid(f"{where} needs exactly one of 'every' or 'after'")
    (key, value), = raw.items()
    lowest = 2 if key == "every" else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        # every = 1 (or after = 0) would refuse the first connection too, changing the
        # host's status; the ground truth must stay what the rest of the entry says.
        raise Invalid(f"{where}.{key} must be an integer of at least {lowest}")
    return Throttle(**{key: value})


def _anvil(raw: Any, where: str) -> Anvil:
    raw = _table(raw, where)
    _keys(raw, where, optional={"count_limit", "rate_limit", "rate_time_unit"})
    if not {"count_limit", "rate_limit"} & raw.keys():
        raise Invalid(f"{where} needs count_limit, rate_limit or both")
    count = _positive(raw["count_limit"], f"{where}.count_limit") if "count_limit" in raw else None
    rate = _positive(raw["rate_limit"], f"{where}.rate_limit") if "rate_limit" in raw else None
    unit = _seconds(raw.get("rate_time_unit", 60), f"{where}.rate_time_unit", most=3600)
    if "rate_time_unit" in raw and rate is None:
        raise Invalid(f"{where}: rate_time_unit without rate_limit")
    return Anvil(count, rate, unit)


def _postscreen(raw: Any, where: str) -> Postscreen:
    raw = _table(raw, where)
    _keys(raw, where, optional={"greet_wait", "greet_action", "greet_ttl"})
    return Postscreen(
        greet_wait=_seconds(raw.get("greet_wait", 6), f"{where}.greet_wait", most=300),
        greet_action=_enum(GreetAction, raw.get("greet_action", "drop"),
                           f"{where}.greet_action"),
        greet_ttl=_seconds(raw.get("greet_ttl", 86400), f"{where}.greet_ttl", most=10**7))


def _positive(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise Invalid(f"{where} must be a positive integer")
    return raw


def _seconds(raw: Any, where: str, *, most: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= most:
        raise Invalid(f"{where} must be a number of seconds above 0, at most {most:g}")
    return float(raw)


def _shared_servers(hosts: list[Host]) -> None:
    """Hosts that share an address are names of one server: they must describe the same one."""
    first: dict[str, Host] = {}
    for host in hosts:
        for ip in host.addresses:
            other = first.setdefault(ip, host)
            if other is host or other.server() == host.server():
                continue
            differ = next(f for f in SERVER_FIELDS if getattr(other, f) != getattr(host, f))
            raise Invalid(f"address {ip} is shared by hosts {other.name} and {host.name}, "
                          f"which differ in {differ!r}: one server answers for both names")


def _certificate_name(raw: Any, where: str) -> str:
    """A certificate DNS name: a host name, or ``*.`` and one (RFC 6125 §6.4.3 wildcard)."""
    text = _str(raw, where)
    if text.startswith("*."):
        return "*." + _name(text[2:], where)
    return _name(text, where)


def _ciphers(raw: Any, where: str) -> str:
    text = _str(raw, where)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(text)
    except ssl.SSLError:
        raise Invalid(f"{where}: OpenSSL accepts no cipher from {text!r}") from None
    return text


def _no_duplicates(values: Iterable[object], what: str) -> None:
    dupes = [v for v, n in Counter(values).items() if n > 1]
    if dupes:
        raise Invalid(f"duplicate {what} {dupes[0]!r}")
