"""The survey's enforcement lookups: what MTA-STS, TLS-RPT and DANE senders would find.

:mod:`research.scan.survey` calls these and appends what they return to the raw log, as records of
their own kinds so ``--resume`` skips finished ones:

* ``policy``, one per domain with MX hosts: the MTA-STS record and policy
  (:mod:`research.policy.mtasts`), the TLS-RPT record (:mod:`research.policy.tlsrpt`) and the DNSSEC
  state of the domain's MX RRset (:mod:`research.scan.dnssec`);
* ``tlsa``, one per MX host: its ``_25._tcp`` TLSA records and their DNSSEC state
  (:mod:`research.policy.dane`);

and :func:`certificate_fields` adds the certificate verdict and chain to each ``host`` record.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.resolver

from research.errors import InputError
from research.policy import dane, mtasts, tlsrpt
from research.policy.pki import CertTrust, assess_chain, certificate_rows, key_facts, parse_chain
from research.policy.pki import signature_algorithm as sig_alg
from research.scan.dnssec import DnssecResolver, load_anchors
from research.settings import DEFAULT_TIMEOUT
from research.store.rawlog import Record
from research.store.schema import HostStatus, TlsResult

_NO_SESSION = frozenset({HostStatus.TIMEOUT.value, HostStatus.REFUSED.value,
                         HostStatus.UNRESOLVED.value, HostStatus.SMTP_ERROR.value})
_NO_STARTTLS = frozenset({HostStatus.NO_STARTTLS.value, HostStatus.STARTTLS_REJECTED.value})


@dataclass
class EnforcementContext:
    """Everything the lookups need, made once per survey by :func:`make_context`."""

    resolver: dns.resolver.Resolver
    dnssec: DnssecResolver
    trust: CertTrust
    https: ssl.SSLContext
    mta_sts_port: int = mtasts.HTTPS_PORT
    timeout: float = DEFAULT_TIMEOUT


def make_context(resolver: dns.resolver.Resolver, *, trust: CertTrust,
                 trust_ca: str | Path | None = None, dnssec_anchor: str | Path | None = None,
                 mta_sts_port: int = mtasts.HTTPS_PORT,
                 timeout: float = DEFAULT_TIMEOUT) -> EnforcementContext:
    """Raises InputError if ``trust_ca`` or ``dnssec_anchor`` cannot be used."""
    anchors = load_anchors(dnssec_anchor) if dnssec_anchor is not None else None
    try:
        https = mtasts.tls_context(trust_ca)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"{trust_ca}: cannot load as trusted CAs ({exc})") from None
    return EnforcementContext(resolver, DnssecResolver(resolver, anchors), trust, https,
                              mta_sts_port, timeout)


def policy_record(domain: str, dns_status: str, mx_hosts: list[str],
                  ctx: EnforcementContext) -> Record:
    """The ``policy`` raw-log record of a domain with MX hosts (``mx`` or ``implicit_mx``)."""
    sts = mtasts.check_mta_sts(domain, mx_hosts, resolver=ctx.resolver, port=ctx.mta_sts_port,
                               context=ctx.https, timeout=ctx.timeout)
    report = tlsrpt.lookup_tlsrpt(domain, ctx.resolver)
    # DANE needs the MX RRset (for an implicit MX, the domain's address RRset) to be secure.
    mx = ctx.dnssec.lookup(domain, "A" if dns_status == "implicit_mx" else "MX")
    return {
        "kind": "policy", "domain": domain,
        "mta_sts": sts,
        "tlsrpt": report.record(),
        "mx_dnssec": {"status": mx.dnssec.value if mx.dnssec else None,
                      "method": ctx.dnssec.method, "error": mx.error},
    }


def tlsa_record(mx_host: str, ctx: EnforcementContext) -> Record:
    """The ``tlsa`` raw-log record of an MX host."""
    return {"kind": "tlsa", **dane.lookup_tlsa(mx_host, ctx.dnssec)}


def certificate_fields(status: str, chain_der: list[bytes], mx_host: str,
                       trust: CertTrust) -> dict[str, Any]:
    """The ``hosts`` certificate-verdict columns and the ``certificates`` rows of one target.

    ``status`` is the host's final status; ``chain_der`` the chain it presented, leaf first
    (empty if none was seen).
    """
    fields: dict[str, Any] = {"certificates": []}
    if status in _NO_SESSION:
        return fields
    if status in _NO_STARTTLS:
        return {**fields, "webpki_result": TlsResult.STARTTLS_NOT_SUPPORTED.value}
    chain = parse_chain(chain_der)
    if status != HostStatus.STARTTLS.value or not chain:
        return {**fields, "webpki_result": TlsResult.VALIDATION_FAILURE.value,
                "cert_chain_length": len(chain) or None}
    verdict = assess_chain(chain, mx_host, trust)
    key = key_facts(chain[0])
    return {
        "certificates": certificate_rows(chain),
        "webpki_result": verdict.result.value,
        "cert_chain_trusted": verdict.chain_trusted,
        "cert_expired": verdict.expired,
        "cert_trust_error": verdict.error,
        "cert_chain_length": len(chain),
        "cert_key_type": key.key_type,
        "cert_key_bits": key.key_bits,
        "cert_signature_algorithm": sig_alg(chain[0]),
    }
