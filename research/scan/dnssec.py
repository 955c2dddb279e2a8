"""DNSSEC state of DNS answers: validated here from a trust anchor, or read from the AD bit.

Two methods, and every result says which one produced it:

* ``trust-anchor`` (:attr:`DnssecMethod.TRUST_ANCHOR`): this module checks the signatures
  itself. An answer is ``secure`` when an RRSIG over it verifies with a DNSKEY of the signer's
  zone, and that DNSKEY RRset is itself secure: signed by a key that matches the trust anchor
  (for an anchored zone) or a DS RRset in the parent that is secure in turn. The chain is
  followed from the signer names upwards, so one anchor (the root's, or the testbed's
  ``test.``) covers every zone beneath it. An answer without RRSIGs, or signed by a zone under
  no anchor, is ``insecure``; a signature or chain that does not verify is ``bogus``. Denial of
  existence (NSEC/NSEC3) is not validated: "no records" is reported as such, unproven.
* ``resolver-ad`` (:attr:`DnssecMethod.RESOLVER_AD`): the answer is ``secure`` when the
  resolver set the AD bit (RFC 4035 §3.2.3, asked for with AD=1 as RFC 6840 §5.7 allows), else
  ``insecure``. Only as trustworthy as the resolver and the path to it; a validating resolver
  answers SERVFAIL for bogus data, which shows up as a DNS error.

Queries go through the given dnspython resolver's servers, with EDNS DO set, on a private copy
so the caller's resolver is left as it was.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns._features
import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zonefile
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS

from research.errors import InputError
from research.scan.resolver import TemporaryDnsFailure, query
from research.settings import DNS_RETRIES
from research.store.schema import DnssecMethod, DnssecStatus

_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragmentation


@dataclass(frozen=True)
class TrustAnchors:
    """DS or DNSKEY records of zones whose keys are trusted without proof (e.g. the root's)."""

    ds: dict[dns.name.Name, list[DS]] = field(default_factory=dict)
    dnskey: dict[dns.name.Name, list[DNSKEY]] = field(default_factory=dict)
    source: str = ""

    @property
    def zones(self) -> list[dns.name.Name]:
        return sorted(set(self.ds) | set(self.dnskey))

    def covers(self, name: dns.name.Name) -> bool:
        """Whether ``name`` is at or below an anchored zone."""
        return any(name.is_subdomain(zone) for zone in self.zones)


def parse_anchors(text: str, source: str = "") -> TrustAnchors:
    """Trust anchors from zone-file lines with absolute owner names, e.g.
    ``test. IN DS 12345 13 2 <hex>`` or a DNSKEY line; other record types are refused.

    Raises:
        InputError: the text is not zone-file syntax, has another type, or holds no anchor.
    """
    try:
        rrsets = dns.zonefile.read_rrsets(text, rdclass=None, default_ttl=0, relativize=False)
    except (dns.exception.DNSException, ValueError) as exc:
        raise InputError(f"{source or 'trust anchors'}: not DS/DNSKEY records ({exc})") from None
    ds: dict[dns.name.Name, list[DS]] = {}
    keys: dict[dns.name.Name, list[DNSKEY]] = {}
    for rrset in rrsets:
        for rdata in rrset:
            if isinstance(rdata, DS):
                ds.setdefault(rrset.name, []).append(rdata)
            elif isinstance(rdata, DNSKEY):
                keys.setdefault(rrset.name, []).append(rdata)
            else:
                raise InputError(f"{source or 'trust anchors'}: {rrset.name} "
                                 f"{dns.rdatatype.to_text(rrset.rdtype)} is not DS or DNSKEY")
    if not ds and not keys:
        raise InputError(f"{source or 'trust anchors'}: no DS or DNSKEY record")
    return TrustAnchors(ds, keys, source)


def load_anchors(path: str | Path) -> TrustAnchors:
    """:func:`parse_anchors` of a file. Raises InputError if unreadable or not anchors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read trust anchors ({exc})") from None
    return parse_anchors(text, str(path))


@dataclass
class Lookup:
    """One RRset looked up, with its DNSSEC state."""

    name: str
    rdtype: str
    rrset: dns.rrset.RRset | None = None
    """The answer's records; None for NXDOMAIN, no data, or a DNS error."""
    nxdomain: bool = False
    dnssec: DnssecStatus | None = None
    """None when there is nothing to validate (no records) or on a DNS error."""
    error: str | None = None
    """The DNS error, or why the records are bogus."""
    dns_error: bool = False


class DnssecResolver:
    """Looks up RRsets with their DNSSEC state, by :attr:`DnssecMethod.TRUST_ANCHOR` when
    ``anchors`` are given, else by :attr:`DnssecMethod.RESOLVER_AD`. Thread-safe; validated
    zone keys are cached."""

    def __init__(self, resolver: dns.resolver.Resolver, anchors: TrustAnchors | None = None,
                 *, retries: int = DNS_RETRIES) -> None:
        """Raises InputError when ``anchors`` are given but dnspython cannot validate (its
        DNSSEC support needs a compatible ``cryptography``)."""
        if anchors is not None and not dns._features.have("dnssec"):
            raise InputError("DNSSEC validation is unavailable: dnspython's dns.dnssec needs a "
                             "newer cryptography than the one installed")
        self.anchors = anchors
        self.retries = retries
        self._resolver = dns.resolver.Resolver(configure=False)
        self._resolver.nameservers = list(resolver.nameservers)
        self._resolver.port = resolver.port
        self._resolver.nameserver_ports = dict(resolver.nameserver_ports)
        self._resolver.timeout = resolver.timeout
        self._resolver.lifetime = resolver.lifetime
        self._resolver.use_edns(0, dns.flags.DO, _EDNS_PAYLOAD)
        self._resolver.set_flags(dns.flags.RD | dns.flags.AD)
        self._lock = threading.Lock()
        self._keys: dict[dns.name.Name, tuple[DnssecStatus, dns.rrset.RRset | None, str | None]]
        self._keys = {}

    @property
    def method(self) -> DnssecMethod:
        return (DnssecMethod.TRUST_ANCHOR if self.anchors is not None
                else DnssecMethod.RESOLVER_AD)

    def lookup(self, name: str, rdtype: str) -> Lookup:
        """``name``/``rdtype`` with its DNSSEC state. Never raises for DNS failures."""
        found = Lookup(name, rdtype)
        try:
            answer = self._query(dns.name.from_text(name), rdtype)
        except dns.resolver.NXDOMAIN:
            found.nxdomain = True
            return found
        except TemporaryDnsFailure as exc:
            found.error, found.dns_error = str(exc), True
            return found
        if answer.rrset is None:
            return found
        found.rrset = answer.rrset
        if self.anchors is None:
            secure = bool(answer.response.flags & dns.flags.AD)
            found.dnssec = DnssecStatus.SECURE if secure else DnssecStatus.INSECURE
            return found
        found.dnssec, found.error = self._validate(answer.rrset, _signatures(answer))
        return found

    def _query(self, name: dns.name.Name, rdtype: str) -> dns.resolver.Answer:
        return query(self._resolver, name, rdtype, self.retries)

    def _validate(self, rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None
                  ) -> tuple[DnssecStatus, str | None]:
        assert self.anchors is not None
        if sigs is None or not len(sigs):
            return DnssecStatus.INSECURE, None
        signers = {sig.signer for sig in sigs}
        if len(signers) != 1:
            return DnssecStatus.BOGUS, "RRSIGs name more than one signer"
        signer = signers.pop()
        if not rrset.name.is_subdomain(signer):
            return DnssecStatus.BOGUS, f"signer {signer} is not a parent of {rrset.name}"
        if not self.anchors.covers(signer):
            return DnssecStatus.INSECURE, None
        status, keys, error = self._zone_keys(signer)
        if status is not DnssecStatus.SECURE or keys is None:
            return status, error
        try:
            dns.dnssec.validate(rrset, sigs, {signer: keys}, now=time.time())
        except dns.dnssec.ValidationFailure as exc:
            return DnssecStatus.BOGUS, f"{rrset.name} {_type(rrset)}: {exc}"
        return DnssecStatus.SECURE, None

    def _zone_keys(self, zone: dns.name.Name
                   ) -> tuple[DnssecStatus, dns.rrset.RRset | None, str | None]:
        with self._lock:
            cached = self._keys.get(zone)
        if cached is None:
            cached = self._fetch_zone_keys(zone)
            with self._lock:
                self._keys[zone] = cached
        return cached

    def _fetch_zone_keys(self, zone: dns.name.Name
                         ) -> tuple[DnssecStatus, dns.rrset.RRset | None, str | None]:
        assert self.anchors is not None
        try:
            answer = self._query(zone, "DNSKEY")
        except (dns.resolver.NXDOMAIN, TemporaryDnsFailure) as exc:
            return DnssecStatus.BOGUS, None, f"{zone} DNSKEY: {exc or 'NXDOMAIN'}"
        if answer.rrset is None:
            return DnssecStatus.BOGUS, None, f"{zone} has no DNSKEY"
        dnskeys = answer.rrset
        if zone in self.anchors.ds or zone in self.anchors.dnskey:
            trusted = [k for k in dnskeys if _matches_any(zone, k, self.anchors.ds.get(zone, []))
                       or k in self.anchors.dnskey.get(zone, [])]
            if not trusted:
                return DnssecStatus.BOGUS, None, f"no DNSKEY of {zone} matches the trust anchor"
        else:
            try:
                ds_answer = self._query(zone, "DS")
            except (dns.resolver.NXDOMAIN, TemporaryDnsFailure) as exc:
                return DnssecStatus.BOGUS, None, f"{zone} DS: {exc or 'NXDOMAIN'}"
            if ds_answer.rrset is None:
                # An unsigned delegation (not proven: NSEC/NSEC3 are not checked).
                return DnssecStatus.INSECURE, None, None
            sigs = _signatures(ds_answer)
            if sigs is not None and any(s.signer == zone for s in sigs):
                return DnssecStatus.BOGUS, None, f"{zone} DS is signed by the zone itself"
            status, error = self._validate(ds_answer.rrset, sigs)
            if status is not DnssecStatus.SECURE:
                return status, None, error
            trusted = [k for k in dnskeys if _matches_any(zone, k, list(ds_answer.rrset))]
            if not trusted:
                return DnssecStatus.BOGUS, None, f"no DNSKEY of {zone} matches its DS"
        trusted_set = dns.rrset.RRset(zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for key in trusted:
            trusted_set.add(key)
        try:
            dns.dnssec.validate(dnskeys, _signatures(answer) or _empty_sigs(zone),
                                {zone: trusted_set}, now=time.time())
        except dns.dnssec.ValidationFailure as exc:
            return DnssecStatus.BOGUS, None, f"{zone} DNSKEY: {exc}"
        return DnssecStatus.SECURE, dnskeys, None


def _signatures(answer: dns.resolver.Answer) -> dns.rrset.RRset | None:
    if answer.rrset is None:
        return None
    try:
        return answer.response.find_rrset(
            answer.response.answer, answer.rrset.name, dns.rdataclass.IN,
            dns.rdatatype.RRSIG, answer.rrset.rdtype)
    except KeyError:
        return None


def _empty_sigs(zone: dns.name.Name) -> dns.rrset.RRset:
    return dns.rrset.RRset(zone, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)


def _matches_any(zone: dns.name.Name, key: DNSKEY, ds_records: list[DS]) -> bool:
    for ds in ds_records:
        try:
            made = dns.dnssec.make_ds(zone, key, ds.digest_type, validating=True)
        except (dns.dnssec.UnsupportedAlgorithm, dns.dnssec.DeniedByPolicy, ValueError):
            continue
        if made == ds:
            return True
    return False


def _type(rrset: dns.rrset.RRset) -> str:
    return dns.rdatatype.to_text(rrset.rdtype)
