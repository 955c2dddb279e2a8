"""The survey's enforcement lookups: what MTA-STS, TLS-RPT and DANE senders would find.

:mod:`research.scan.survey` appends what these return to the raw log, as records of their own
kinds so ``--resume`` skips finished ones:

* ``policy``, one per domain with MX hosts: the MTA-STS record and policy (RFC 8461, judged by
  :mod:`research.policy.mtasts`, fetched by :mod:`research.scan.policy_fetch`), the TLS-RPT
  record (RFC 8460, :mod:`research.policy.tlsrpt`) and the DNSSEC state of the domain's MX
  RRset (:mod:`research.scan.dnssec`);
* ``tlsa``, one per MX host: its ``_25._tcp`` TLSA records and their DNSSEC state (RFC 7672,
  :mod:`research.policy.dane`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dns.resolver

from research.errors import InputError
from research.policy.dane import TlsaRecord, tlsa_name
from research.policy.mtasts import PREFIX as STS_PREFIX
from research.policy.mtasts import (
    StsRecord,
    not_covered,
    parse_policy,
    parse_sts_record,
    policy_host,
)
from research.policy.tlsrpt import PREFIX as TLSRPT_PREFIX
from research.policy.tlsrpt import TlsRpt, parse_tlsrpt
from research.scan.dnssec import DnssecResolver, load_anchors
from research.scan.optout import OptOutList
from research.scan.policy_fetch import fetch_policy, tls_context
from research.scan.resolver import lookup_txt
from research.settings import DEFAULT_MTA_STS_PORT, DEFAULT_TIMEOUT, SurveySettings
from research.store.records import Record, RecordKind
from research.store.schema import (
    DnsStatus,
    FetchStatus,
    PolicyStatus,
    RecordStatus,
    StsMode,
    TlsaStatus,
    TlsResult,
)


@dataclass
class EnforcementContext:
    """Everything the lookups need, made once per survey by :func:`make_context`."""

    resolver: dns.resolver.Resolver
    dnssec: DnssecResolver
    https: ssl.SSLContext
    """What a sender fetching a policy trusts (the Mozilla roots and ``--trust-ca``)."""
    mta_sts_port: int = DEFAULT_MTA_STS_PORT
    timeout: float = DEFAULT_TIMEOUT
    opt_out: OptOutList | None = None
    """Policy hosts (names, addresses) never to contact."""


def make_context(resolver: dns.resolver.Resolver, settings: SurveySettings,
                 opt_out: OptOutList | None = None) -> EnforcementContext:
    """Raises InputError if ``settings.trust_ca`` or ``settings.dnssec_anchor`` cannot be used."""
    anchors = load_anchors(settings.dnssec_anchor) if settings.dnssec_anchor else None
    try:
        https = tls_context(settings.trust_ca)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"{settings.trust_ca}: cannot load as trusted CAs ({exc})") from None
    dnssec = DnssecResolver(resolver, anchors, retries=settings.dns_retries)
    return EnforcementContext(resolver, dnssec, https, settings.mta_sts_port, settings.timeout,
                              opt_out)


def policy_record(domain: str, dns_status: str, mx_hosts: list[str],
                  ctx: EnforcementContext) -> Record:
    """The ``policy`` raw-log record of a domain with MX hosts (``mx`` or ``implicit_mx``)."""
    sts = check_mta_sts(domain, mx_hosts, resolver=ctx.resolver, port=ctx.mta_sts_port,
                        context=ctx.https, timeout=ctx.timeout, opt_out=ctx.opt_out)
    report = lookup_tlsrpt(domain, ctx.resolver)
    # DANE needs the MX RRset (for an implicit MX, the domain's address RRset) to be secure.
    mx = ctx.dnssec.lookup(domain, "A" if dns_status == DnsStatus.IMPLICIT_MX else "MX")
    return {
        "kind": RecordKind.POLICY.value, "domain": domain,
        "mta_sts": sts,
        "tlsrpt": report.record(),
        "mx_dnssec": {"status": mx.dnssec.value if mx.dnssec else None,
                      "method": ctx.dnssec.method.value, "error": mx.error},
    }


def tlsa_record(mx_host: str, ctx: EnforcementContext) -> Record:
    """The ``tlsa`` raw-log record of an MX host."""
    return {"kind": RecordKind.TLSA.value, **lookup_tlsa(mx_host, ctx.dnssec)}


def check_mta_sts(
    domain: str,
    mx_hosts: Iterable[str],
    *,
    resolver: dns.resolver.Resolver,
    port: int = DEFAULT_MTA_STS_PORT,
    context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    opt_out: OptOutList | None = None,
) -> dict[str, Any]:
    """The ``mta_sts`` table's columns (except ``domain``) for ``domain`` with ``mx_hosts``.

    The policy is fetched only when the TXT record is valid, as a sender would, and never from
    a policy host on ``opt_out``. Never raises for DNS, network or server failures.
    """
    found = lookup_txt(f"{STS_PREFIX}.{domain}", resolver)
    row: dict[str, Any] = {"policy_host": policy_host(domain), "mx_not_covered": [],
                           "mx_patterns": [], "fetch_status": FetchStatus.NOT_FETCHED.value}
    if found.error:
        record = StsRecord(RecordStatus.DNS_ERROR, error=found.error)
    else:
        record = parse_sts_record(found.records)
    row.update(txt_status=record.status.value, txt_records=found.records, txt_id=record.id,
               txt_error=record.error)
    if record.status is RecordStatus.VALID:
        fetched = fetch_policy(domain, resolver=resolver, port=port, context=context,
                               timeout=timeout, opt_out=opt_out)
        row.update(policy_ip=fetched.ip, fetch_status=fetched.status.value,
                   http_status=fetched.http_status, content_type=fetched.content_type,
                   fetch_error=fetched.error, policy_text=fetched.body)
        if fetched.status is FetchStatus.CERTIFICATE_INVALID:
            row["policy_result"] = TlsResult.STS_WEBPKI_INVALID.value
        elif fetched.status is FetchStatus.OPTED_OUT:
            pass  # not asked: no sender's failure to report
        elif fetched.status is not FetchStatus.OK:
            row["policy_result"] = TlsResult.STS_POLICY_FETCH_ERROR.value
        else:
            policy = parse_policy(fetched.body or "")
            row.update(policy_status=(PolicyStatus.VALID if policy.valid
                                      else PolicyStatus.INVALID).value,
                       policy_error=policy.error, mode=policy.mode, max_age=policy.max_age,
                       mx_patterns=policy.mx)
            if policy.valid and policy.mode != StsMode.NONE:
                # Mode none withdraws the policy: it covers nothing and refuses nothing.
                row["mx_not_covered"] = not_covered(policy.mx, mx_hosts)
            elif not policy.valid:
                row["policy_result"] = TlsResult.STS_POLICY_INVALID.value
    row["checked_at"] = datetime.now(UTC).isoformat()
    return row


def lookup_tlsrpt(domain: str, resolver: dns.resolver.Resolver) -> TlsRpt:
    """Look up and judge ``_smtp._tls.<domain>``. Never raises for DNS failures."""
    found = lookup_txt(f"{TLSRPT_PREFIX}.{domain}", resolver)
    if found.error:
        return TlsRpt(RecordStatus.DNS_ERROR, error=found.error)
    return parse_tlsrpt(found.records)


def lookup_tlsa(mx_host: str, resolver: DnssecResolver) -> dict[str, Any]:
    """The raw-log fields of an MX host's TLSA lookup (the ``dane`` table's host columns).

    Never raises for DNS failures: they are ``tlsa_status = "dns_error"``.
    """
    name = tlsa_name(mx_host)
    found = resolver.lookup(name, "TLSA")
    record: dict[str, Any] = {"mx_host": mx_host, "tlsa_name": name, "tlsa_records": [],
                              "dnssec_method": resolver.method.value}
    if found.dns_error:
        return {**record, "tlsa_status": TlsaStatus.DNS_ERROR.value, "dnssec_error": found.error}
    if found.rrset is None:
        return {**record, "tlsa_status": TlsaStatus.NONE.value}
    records = [TlsaRecord(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in found.rrset]
    records.sort(key=lambda r: r.text)
    return {
        **record,
        "tlsa_status": TlsaStatus.FOUND.value,
        "tlsa_records": [r.text for r in records],
        "tlsa_dnssec": found.dnssec.value if found.dnssec else None,
        "dnssec_error": found.error,
        "usable_records": sum(r.usable for r in records),
        "pkix_records": sum(r.pkix for r in records),
    }
