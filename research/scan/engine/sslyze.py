"""sslyze's own scan over SMTP STARTTLS (``--engine sslyze``, the cross-check): versions,
accepted suites, leaf certificate.

Only the cipher-suite and certificate scan commands run. sslyze's early-data check in particular
is never used: it writes an HTTP request into the SMTP session.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from traceback import TracebackException

from cryptography.hazmat.primitives.serialization import Encoding
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EphemeralKeyInfo
from sslyze import (
    CertificateInfoExtraArgument,
    CertificateInfoScanResult,
    CipherSuitesScanResult,
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttempt,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)

from research.policy.certs import summarise
from research.scan.engine.result import TlsScan, TlsTarget, accepted_cipher
from research.settings import ProbeSettings
from research.store.schema import TLS_VERSIONS

_CIPHER_COMMANDS = {v.column: ScanCommand(f"{v.column}_cipher_suites") for v in TLS_VERSIONS}


def scan_tls(targets: Sequence[TlsTarget], settings: ProbeSettings, *,
             concurrency: int) -> Iterator[TlsScan]:
    """Enumerate versions, suites and the certificate of every target, yielding each as it
    finishes.

    ``settings.per_host_connections`` caps simultaneous connections to one target;
    ``concurrency`` caps targets scanned at once. ``settings.trust_ca`` adds a PEM file of extra
    roots for the certificate check. Never raises for server failures: they are in
    :attr:`TlsScan.errors`.
    """
    if not targets:
        return
    by_location: dict[tuple[str, str | None, int], TlsTarget] = {
        (t.mx_host, t.ip, t.port): t for t in targets
    }
    scanner = Scanner(
        per_server_concurrent_connections_limit=settings.per_host_connections,
        concurrent_server_scans_limit=concurrency,
    )
    scanner.queue_scans([_request(t, settings) for t in targets])
    # sslyze's bundled Mozilla store holds a root with a negative serial number; cryptography
    # warns about it on every load, which says nothing about the hosts being scanned.
    warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
    for server_result in scanner.get_results():
        loc = server_result.server_location
        target = by_location[(loc.hostname, loc.ip_address, loc.port)]
        yield _interpret(target, server_result)


def _request(target: TlsTarget, settings: ProbeSettings) -> ServerScanRequest:
    extra = ScanCommandsExtraArguments()
    if settings.trust_ca is not None:
        extra = ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(settings.trust_ca))
        )
    return ServerScanRequest(
        server_location=ServerNetworkLocation(
            hostname=target.mx_host, port=target.port, ip_address=target.ip
        ),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication=target.mx_host,
            tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.SMTP,
            smtp_ehlo_hostname=settings.ehlo_name,
            network_timeout=max(1, round(settings.timeout)),
            network_max_retries=2,
        ),
        scan_commands={*_CIPHER_COMMANDS.values(), ScanCommand.CERTIFICATE_INFO},
        scan_commands_extra_arguments=extra,
    )


def _interpret(target: TlsTarget, result: ServerScanResult) -> TlsScan:
    scan = TlsScan(target=target)
    if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        scan.errors.append(_trace_text(result.connectivity_error_trace) or "no TLS connectivity")
        return scan
    scan.connected = True
    attempts = result.scan_result
    for version in TLS_VERSIONS:
        attempt: ScanCommandAttempt = getattr(attempts, _CIPHER_COMMANDS[version.column].value)
        suites = _completed(attempt, scan.errors, version.label)
        if not isinstance(suites, CipherSuitesScanResult):
            scan.versions[version.column] = None
            continue
        scan.versions[version.column] = bool(suites.accepted_cipher_suites)
        for accepted in suites.accepted_cipher_suites:
            suite = accepted.cipher_suite
            scan.ciphers.append(accepted_cipher(
                version.label, suite.name, key_bits=suite.key_size,
                anonymous=suite.is_anonymous,
                group_family=_group_family(accepted.ephemeral_key)))
    cert_info = _completed(attempts.certificate_info, scan.errors, "certificate")
    if isinstance(cert_info, CertificateInfoScanResult) and cert_info.certificate_deployments:
        deployment = cert_info.certificate_deployments[0]
        scan.certificate = summarise(deployment.received_certificate_chain[0], target.mx_host)
        scan.chain = [c.public_bytes(Encoding.DER) for c in deployment.received_certificate_chain]
        mozilla = [
            r for r in deployment.path_validation_results if r.trust_store.name == "Mozilla"
        ]
        scan.trusted_mozilla = mozilla[0].was_validation_successful if mozilla else None
    return scan


def _completed(attempt: ScanCommandAttempt, errors: list[str], what: str) -> object | None:
    if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
        return attempt.result
    reason = attempt.error_reason.value if attempt.error_reason else "error"
    detail = _trace_text(attempt.error_trace)
    errors.append(f"{what}: {reason}" + (f" ({detail})" if detail else ""))
    return None


def _group_family(key: EphemeralKeyInfo | None) -> str | None:
    if key is None:
        return None
    return "DHE" if isinstance(key, DhEphemeralKeyInfo) else "ECDHE"


def _trace_text(trace: TracebackException | None) -> str:
    if trace is None:
        return ""
    return "".join(trace.format_exception_only()).strip().splitlines()[-1]
