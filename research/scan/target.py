"""The ``host`` record of one (MX host, IP) target: the ``hosts`` row with its ``ciphers`` and
``certificates`` rows, from what its SMTP probe and TLS scan found.

The engine's address task (:mod:`research.scan.address`) and the sslyze path of the runner both
build their records here.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from functools import cache
from typing import Any

from research.policy.certs import CertSummary, summarise_der
from research.policy.pki import (
    CertTrust,
    assess_chain,
    certificate_rows,
    key_facts,
    load_trust,
    parse_chain,
    signature_algorithm,
)
from research.scan.engine import TlsScan
from research.scan.smtp import SmtpProbe
from research.store.records import Record, RecordKind, now
from research.store.schema import (
    NO_SMTP_SESSION,
    STARTTLS_UNAVAILABLE,
    TLS_VERSIONS,
    HostStatus,
    TlsResult,
)

_trust_lock = threading.Lock()


@cache
def _load_trust(trust_ca: str | None) -> CertTrust:
    return load_trust(trust_ca)


def trust_for(trust_ca: str | None) -> CertTrust:
    """The roots certificates are judged against, loaded once per process (workers too).

    Raises InputError if ``trust_ca`` cannot be read as PEM certificates.
    """
    with _trust_lock:
        return _load_trust(trust_ca)


def host_record(probe: SmtpProbe, scan: TlsScan | None, *,
                trust: CertTrust | None = None) -> Record:
    """The raw-log record of one target from its SMTP probe and, if STARTTLS was accepted,
    its TLS scan. Decides ``starttls`` vs ``tls_failed``: any successful handshake counts.
    With ``trust``, also judges the presented chain against it (the certificate-verdict columns
    and the ``certificates`` rows, see :func:`certificate_fields`)."""
    record: Record = {
        "kind": RecordKind.HOST.value, "mx_host": probe.mx_host, "ip": probe.ip,
        "port": probe.port, "banner": probe.banner, "ehlo_extensions": probe.ehlo_extensions,
        "starttls_offered": probe.starttls_offered,
        "negotiated_version": probe.negotiated_version,
        "negotiated_cipher": probe.negotiated_cipher,
        "cert_sans": [], "ciphers": [], "undecided": [], "scanned_at": now(),
    }
    errors = [probe.error] if probe.error else []
    duration = probe.duration_s
    status = probe.status
    cert = summarise_der(probe.certificate_der, probe.mx_host) if probe.certificate_der else None
    if scan is not None:
        errors.extend(scan.errors)
        any_version = any(scan.versions.values())
        handshake = any_version or probe.negotiated_version is not None
        status = HostStatus.STARTTLS if handshake else HostStatus.TLS_FAILED
        if scan.connected:
            record.update(scan.versions)
            accepted = [v.label for v in TLS_VERSIONS if scan.versions.get(v.column)]
            record["min_version"] = accepted[0] if accepted else None
            record["max_version"] = accepted[-1] if accepted else None
            record["ciphers"] = [asdict(c) for c in scan.ciphers]
        cert = scan.certificate or cert
        record["cert_trusted_mozilla"] = scan.trusted_mozilla
    if cert is not None:
        record.update(certificate_columns(cert))
    record["status"] = status.value if status else HostStatus.TLS_FAILED.value
    record["error"] = "; ".join(errors) or None
    record["duration_s"] = duration
    if trust is not None:
        chain = scan.chain if scan is not None and scan.chain else (
            [probe.certificate_der] if probe.certificate_der else [])
        record.update(certificate_fields(record["status"], chain, probe.mx_host, trust))
    return record


def certificate_columns(cert: CertSummary | None) -> dict[str, Any]:
    """The ``hosts`` columns describing a leaf (``cert_subject`` … ``cert_sha256``); all null
    (and no names) without one."""
    if cert is None:
        return {"cert_subject": None, "cert_issuer": None, "cert_sans": [],
                "cert_not_before": None, "cert_not_after": None, "cert_self_signed": None,
                "cert_matches_mx": None, "cert_sha256": None}
    return {"cert_subject": cert.subject, "cert_issuer": cert.issuer, "cert_sans": cert.sans,
            "cert_not_before": cert.not_before, "cert_not_after": cert.not_after,
            "cert_self_signed": cert.self_signed, "cert_matches_mx": cert.matches,
            "cert_sha256": cert.sha256}


def certificate_fields(status: str, chain_der: list[bytes], mx_host: str,
                       trust: CertTrust) -> dict[str, Any]:
    """The ``hosts`` certificate-verdict columns and the ``certificates`` rows of one target.

    ``status`` is the host's final status; ``chain_der`` the chain it presented, leaf first
    (empty if none was seen).
    """
    fields: dict[str, Any] = {"certificates": []}
    if status in NO_SMTP_SESSION:
        return fields
    if status in STARTTLS_UNAVAILABLE:
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
        "cert_signature_algorithm": signature_algorithm(chain[0]),
    }
