"""DANE for SMTP (RFC 7672): an MX host's TLSA records, and whether they match a chain.

The records are looked up by :func:`research.scan.lookups.lookup_tlsa`; :func:`match_chain`
decides whether a presented certificate chain satisfies usable TLSA records the way RFC 7672
§3.1 says an SMTP client must:

* usage 3 (DANE-EE): the leaf matches the record; names and dates are not checked (§3.1.1);
* usage 2 (DANE-TA): a certificate the server presented above the leaf matches the record (or
  the record holds a whole certificate, selector 0 matching type 0), the chain from the leaf up
  to it verifies signature by signature, the leaf is within its dates, and its names cover the
  MX host name (§3.1.2, §3.2.2; the TLSA base domain is the MX host here, as no CNAME is
  followed);
* usages 0 and 1 (PKIX-TA, PKIX-EE) are unusable for SMTP (§3.1.3), as are unknown selectors
  and matching types.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from research.policy.certs import dns_names, name_matches
from research.policy.pki import spki_der

DANE_EE = 3
DANE_TA = 2
PKIX_USAGES = frozenset({0, 1})
_TLSA_TEXT = re.compile(r"\s*(\d{1,3})\s+(\d{1,3})\s+(\d{1,3})\s+([0-9A-Fa-f\s]*)\s*")


def tlsa_name(mx_host: str, port: int = 25) -> str:
    """The owner name of an SMTP server's TLSA records: ``_25._tcp.<mx_host>``."""
    return f"_{port}._tcp.{mx_host.rstrip('.')}"


@dataclass(frozen=True)
class TlsaRecord:
    usage: int
    selector: int
    matching_type: int
    data: bytes

    @property
    def text(self) -> str:
        """Presentation form, ``"3 1 1 <hex>"``."""
        return f"{self.usage} {self.selector} {self.matching_type} {self.data.hex()}"

    @property
    def usable(self) -> bool:
        """Usable for SMTP (RFC 7672 §3.1): DANE-TA/EE with a known selector and matching type."""
        return (self.usage in (DANE_TA, DANE_EE) and self.selector in (0, 1)
                and self.matching_type in (0, 1, 2))

    @property
    def pkix(self) -> bool:
        return self.usage in PKIX_USAGES


def parse_tlsa(text: str) -> TlsaRecord:
    """A record from ``"usage selector matching-type hex"`` (spaces in the hex allowed).

    Raises ValueError when the text is not in that form.
    """
    match = _TLSA_TEXT.fullmatch(text)
    if not match:
        raise ValueError(f"not a TLSA record: {text!r}")
    usage, selector, mtype = (int(match.group(i)) for i in (1, 2, 3))
    data = "".join(match.group(4).split())
    if len(data) % 2 or max(usage, selector, mtype) > 255:
        raise ValueError(f"not a TLSA record: {text!r}")
    return TlsaRecord(usage, selector, mtype, bytes.fromhex(data))


def association_data(cert: x509.Certificate, selector: int, matching_type: int) -> bytes:
    """What a TLSA record with ``selector``/``matching_type`` holds for ``cert`` (RFC 6698 §2.1).

    Raises ValueError for a selector or matching type other than 0, 1, 2.
    """
    if selector == 0:
        data = cert.public_bytes(serialization.Encoding.DER)
    elif selector == 1:
        data = spki_der(cert)
    else:
        raise ValueError(f"unknown TLSA selector {selector}")
    if matching_type == 0:
        return data
    if matching_type == 1:
        return hashlib.sha256(data).digest()
    if matching_type == 2:
        return hashlib.sha512(data).digest()
    raise ValueError(f"unknown TLSA matching type {matching_type}")


def record_matches(record: TlsaRecord, cert: x509.Certificate) -> bool:
    """Whether ``record``'s selector and matching type give its data for ``cert``."""
    try:
        return association_data(cert, record.selector, record.matching_type) == record.data
    except ValueError:
        return False


@dataclass(frozen=True)
class DaneMatch:
    matched: bool
    usage: int | None
    """Usage of the record that matched (3 or 2); None if none did."""
    reason: str
    """What matched, or why nothing did."""


def match_chain(records: Sequence[TlsaRecord], chain: Sequence[x509.Certificate],
                mx_host: str, *, now: dt.datetime | None = None) -> DaneMatch:
    """Whether ``chain`` (leaf first, as presented) satisfies any usable record (module doc)."""
    usable = [r for r in records if r.usable]
    if not usable:
        return DaneMatch(False, None, "no usable TLSA record (only PKIX-TA/EE or unknown types)")
    if not chain:
        return DaneMatch(False, None, "no certificate presented")
    leaf = chain[0]
    for record in usable:
        if record.usage == DANE_EE and record_matches(record, leaf):
            return DaneMatch(True, DANE_EE, f"DANE-EE {record.selector} "
                             f"{record.matching_type} matches the leaf")
    now = now or dt.datetime.now(dt.UTC)
    reasons = []
    for record in usable:
        if record.usage != DANE_TA:
            continue
        anchor = _trust_anchor(record, chain)
        if anchor is None:
            reasons.append(f"DANE-TA {record.selector} {record.matching_type} matches no "
                           "certificate above the leaf")
            continue
        problem = _ta_chain_problem(chain, anchor, mx_host, now)
        if problem is None:
            return DaneMatch(True, DANE_TA, f"DANE-TA {record.selector} "
                             f"{record.matching_type} matches the issuer chain")
        reasons.append(problem)
    if any(r.usage == DANE_EE for r in usable):
        reasons.insert(0, "DANE-EE records do not match the leaf")
    return DaneMatch(False, None, "; ".join(dict.fromkeys(reasons)))


def _trust_anchor(record: TlsaRecord, chain: Sequence[x509.Certificate]
                  ) -> tuple[int, x509.Certificate] | None:
    """(index in the chain, certificate) of the trust anchor the record names, if any.

    The index is len(chain) for a full certificate carried by the record but not presented.
    """
    for index, cert in enumerate(chain[1:], start=1):
        if record_matches(record, cert):
            return index, cert
    if record.selector == 0 and record.matching_type == 0:
        try:
            return len(chain), x509.load_der_x509_certificate(record.data)
        except ValueError:
            return None
    return None


def _ta_chain_problem(chain: Sequence[x509.Certificate], anchor: tuple[int, x509.Certificate],
                      mx_host: str, now: dt.datetime) -> str | None:
    index, ta = anchor
    path = [*chain[:index], ta] if index == len(chain) else list(chain[: index + 1])
    for child, parent in pairwise(path):
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError):
            # ValueError/TypeError: the issuer's key cannot have made this signature at all.
            return (f"DANE-TA: {child.subject.rfc4514_string()} is not signed by "
                    f"{parent.subject.rfc4514_string()}")
    leaf = chain[0]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        return "DANE-TA matches, but the leaf is outside its validity period"
    if not name_matches(mx_host, dns_names(leaf)):
        return f"DANE-TA matches, but the leaf is not valid for {mx_host}"
    return None
