"""A real Postfix instance on loopback, in a private directory, for the log and capture tests.

Postfix (Debian's package, ``apt-get install postfix``) runs with its own ``main.cf`` and
``master.cf`` (``postfix -c DIR start``), writes its log to a file of ours (``maillog_file``,
Postfix >= 3.4), listens only on 127.0.0.1 (its ``smtpd``, with STARTTLS and a self-signed
certificate) and relays every recipient domain to a testbed host given by IP address, so it
makes no DNS lookup and never reaches beyond loopback. Clients (:func:`send`) submit mail over
STARTTLS at a chosen TLS version, or in clear text: Postfix then logs the inbound session
(``smtpd``) and the outbound delivery (``smtp``) with their TLS parameters.

:func:`record_samples` (re)records the shipped samples (``tools/record_postfix_sample.py``).

That needs root (Postfix's master runs as root and drops to the ``postfix`` user) and the
``postfix`` package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MYHOSTNAME = "mta.starttls-survey.test"
SENDER_DOMAIN = "client.starttls-survey.test"
CLIENT_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}


def postfix_missing() -> str | None:
    """Why a Postfix instance cannot run here, or None if it can."""
    if not Path(POSTFIX).exists():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "running Postfix's master needs root"
    return None


@dataclass
class PostfixInstance:
    """A running private Postfix; use :func:`postfix_instance` to start and stop it."""

    workdir: Path
    smtpd_port: int
    relays: dict[str, tuple[str, int]]
    maillog: Path = field(init=False)

    def __post_init__(self) -> None:
        self.maillog = self.workdir / "maillog"

    @property
    def config_dir(self) -> Path:
        return self.workdir / "etc"

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([POSTFIX, "-c", str(self.config_dir), *args], check=False,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            # Postfix reports to syslog or its log file, not to a stderr that is no terminal.
            log = self.maillog.read_text(errors="replace") if self.maillog.exists() else ""
            tail = " | ".join(log.strip().splitlines()[-3:])
            raise RuntimeError(f"postfix {' '.join(args)} failed: "
                               f"{(result.stderr or result.stdout).strip() or tail}")
        return result

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 30.0) -> str:
        """The log once ``text`` occurs ``count`` times; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.maillog.read_text(errors="replace") if self.maillog.exists() else ""
            if log.count(text) >= count:
                return log
            if time.monotonic() > deadline:
                raise TimeoutError(f"Postfix did not log {text!r} x{count}; log:\n{log}")
            time.sleep(0.1)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the queue is empty (every message delivered or bounced)."""
        deadline = time.monotonic() + timeout
        queue = self.workdir / "queue"
        while time.monotonic() < deadline:
            busy = [p for sub in ("incoming", "active", "deferred", "maildrop")
                    for p in (queue / sub).rglob("*") if p.is_file()]
            if not busy:
                return
            time.sleep(0.2)
        raise TimeoutError("Postfix queue did not drain")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postfix_instance(relays: dict[str, tuple[str, int]], *, ca_file: Path | None = None,
                     verify_domains: dict[str, str] | None = None,
                     workdir: Path | None = None) -> Iterator[PostfixInstance]:
    """Start a private Postfix relaying ``relays`` (recipient domain -> (IP, port)).

    ``verify_domains`` maps a recipient domain to the certificate name its relay must present:
    Postfix then delivers with ``smtp_tls_security_level = verify`` there (logging "Verified").
    Raises RuntimeError if Postfix cannot start (see :func:`postfix_missing`).
    """
    reason = postfix_missing()
    if reason:
        raise RuntimeError(reason)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="starttls-postfix-")) if workdir is None else workdir
    # The postfix user must reach the queue through every parent directory.
    os.chmod(root, 0o755)
    instance = PostfixInstance(root, free_port(), relays)
    _write_config(instance, ca_file, verify_domains or {})
    try:
        instance.postfix("start")
        _wait_listening(instance.smtpd_port)
        yield instance
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            instance.postfix("stop")
        _wait_master_gone(instance)
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _inline(entries: dict[str, str]) -> str:
    return "inline:{ " + ", ".join(f"{{ {k} = {v} }}" for k, v in entries.items()) + " }"


def _write_config(pf: PostfixInstance, ca_file: Path | None,
                  verify_domains: dict[str, str]) -> None:
    etc = pf.config_dir
    etc.mkdir(parents=True, exist_ok=True)
    for sub in ("queue", "data"):
        (pf.workdir / sub).mkdir(exist_ok=True)
    shutil.chown(pf.workdir / "data", "postfix", "postfix")
    cert, key = _self_signed(etc)
    transports = {domain: f"smtp:[{ip}]:{port}" for domain, (ip, port) in pf.relays.items()}
    # Bounces to our senders are thrown away rather than relayed anywhere.
    transports[SENDER_DOMAIN] = "discard:"
    policies = {f"[{pf.relays[d][0]}]:{pf.relays[d][1]}": f"verify match={name}"
                for d, name in verify_domains.items()}
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(pf.workdir / "queue"),
        "data_directory": str(pf.workdir / "data"),
        "meta_directory": "/etc/postfix",
        "command_directory": "/usr/sbin",
        "daemon_directory": "/usr/lib/postfix/sbin",
        "shlib_directory": "/usr/lib/postfix",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "maillog_file": str(pf.maillog),
        "maillog_file_prefixes": str(pf.workdir),
        "myhostname": MYHOSTNAME,
        "mydomain": "starttls-survey.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "local_recipient_maps": "",
        # Loopback only, and no name service: every next hop is an IP literal.
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "transport_maps": _inline(transports),
        "smtp_dns_support_level": "disabled",
        "smtp_host_lookup": "native",
        "smtpd_peername_lookup": "no",
        "smtp_connection_cache_on_demand": "no",
        "notify_classes": "",
        # One delivery attempt: a failure bounces at once instead of waiting in the queue.
        "maximal_queue_lifetime": "0",
        "bounce_queue_lifetime": "0",
        "smtp_tls_security_level": "may",
        "smtp_tls_loglevel": "1",
        "smtp_tls_protocols": ">=TLSv1",
        "smtp_tls_mandatory_protocols": ">=TLSv1",
        "smtp_tls_session_cache_database": "",
        # OpenSSL 3 only speaks TLS 1.0/1.1 at security level 0.
        "tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0",
        "tls_high_cipherlist": "DEFAULT:@SECLEVEL=0",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_loglevel": "1",
        "smtpd_tls_protocols": ">=TLSv1",
        "smtpd_tls_cert_file": str(cert),
        "smtpd_tls_key_file": str(key),
        "smtpd_tls_session_cache_database": "",
    }
    if ca_file is not None:
        settings["smtp_tls_CAfile"] = str(ca_file)
    if policies:
        settings["smtp_tls_policy_maps"] = _inline(policies)
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    services = [
        f"127.0.0.1:{pf.smtpd_port} inet n - n - - smtpd",
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "relay unix - - n - - smtp",
        "showq unix n - n - - showq",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ]
    (etc / "master.cf").write_text("\n".join(services) + "\n")


def _self_signed(etc: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MYHOSTNAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(MYHOSTNAME)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = etc / "smtpd-cert.pem", etc / "smtpd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Postfix smtpd did not listen on 127.0.0.1:{port}")


def _wait_master_gone(pf: PostfixInstance, timeout: float = 15.0) -> None:
    pid_file = pf.workdir / "queue" / "pid" / "master.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return
        time.sleep(0.1)


def client_context(version: str) -> ssl.SSLContext:
    """A client context pinned to one TLS version (label ``"TLS 1.0"`` .. ``"TLS 1.3"``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = CLIENT_VERSIONS[version]
        context.maximum_version = CLIENT_VERSIONS[version]
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def send(port: int, recipient: str, *, tls_version: str | None, sender: str | None = None,
         ehlo: str = "client.starttls-survey.test") -> None:
    """Submit one message to 127.0.0.1:``port``; over STARTTLS at ``tls_version`` unless None.

    Raises smtplib.SMTPException or OSError when the server refuses.
    """
    msg = EmailMessage()
    msg["From"] = sender or f"alice@{SENDER_DOMAIN}"
    msg["To"] = recipient
    msg["Subject"] = "starttls-survey log test"
    msg.set_content("A test message for starttls-survey's log parser tests.\n")
    with smtplib.SMTP("127.0.0.1", port, local_hostname=ehlo, timeout=30) as client:
        client.ehlo()
        if tls_version is not None:
            client.starttls(context=client_context(tls_version))
            client.ehlo()
        client.send_message(msg)


def connect_only(port: int) -> None:
    """A session that says EHLO and QUIT without mail or STARTTLS."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="probe.starttls-survey.test",
                      timeout=30) as client:
        client.ehlo()


def exercise(pf: PostfixInstance, domains: dict[str, str]) -> None:
    """The standard workload: one message per client TLS version (and one in clear text), each
    to the recipient domain ``domains`` gives for that version, then a bare EHLO/QUIT session.

    ``domains`` maps a client version label (or ``"plain"``) to a recipient domain.
    """
    for version, domain in domains.items():
        send(pf.smtpd_port, f"bob@{domain}", tls_version=None if version == "plain" else version)
    connect_only(pf.smtpd_port)


TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"


@contextlib.contextmanager
def tcpdump(path: Path, bpf: str) -> Iterator[Path]:
    """Record loopback traffic matching ``bpf`` into the pcap file ``path`` with tcpdump.

    Needs root and Debian's ``tcpdump``; raises RuntimeError if the capture does not start.
    """
    proc = subprocess.Popen([TCPDUMP, "-i", "lo", "-U", "-s", "0", "-w", str(path), bpf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # tcpdump says "listening on lo" on stderr once the capture runs.
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line.strip()}")
        yield path
    finally:
        time.sleep(0.5)  # let the last packets reach the file
        proc.terminate()
        proc.wait(10)


def run_workload(tb: object, out_dir: Path, *, capture: bool) -> dict[str, Path]:
    """Run :data:`WORKLOAD` (plus a refused delivery, and one whose outbound TLS handshake
    fails) through Postfix against the running
    ``mta`` testbed ``tb``; copy the log (and, with ``capture``, a tcpdump capture of every
    session) into ``out_dir``. Returns ``{"log": path, "pcap": path}``.
    """
    from research.testbed import Testbed

    assert isinstance(tb, Testbed)
    out_dir.mkdir(parents=True, exist_ok=True)
    relays = {h.name.removeprefix("mx."): (h.addresses[0], tb.smtp_port)
              for h in tb.scenario.hosts}
    files: dict[str, Path] = {}
    with postfix_instance(relays, ca_file=tb.ca_cert_path,
                          verify_domains={"tls13.mta.test": "mx.tls13.mta.test"}) as pf:
        bpf = f"tcp and (port {pf.smtpd_port} or (net 127.0.201.0/24 and port {tb.smtp_port}))"
        with (tcpdump(out_dir / "postfix-sessions.pcap", bpf) if capture
              else contextlib.nullcontext(None)) as pcap:
            exercise(pf, WORKLOAD)
            send(pf.smtpd_port, "bob@refuses.mta.test", tls_version="TLS 1.3")
            send(pf.smtpd_port, f"bob@{FAILED_HANDSHAKE_DOMAIN}",
                 tls_version=FAILED_HANDSHAKE_CLIENT_VERSION)
            pf.wait_idle()
            pf.wait_for_log("disconnect from", count=len(WORKLOAD) + 3)
            time.sleep(0.5)
        if pcap is not None:
            files["pcap"] = pcap
        files["log"] = out_dir / "postfix-maillog.log"
        shutil.copyfile(pf.maillog, files["log"])
    return files


def pcap_to_pcapng_gz(pcap: Path, target: Path) -> Path:
    """Re-encode tcpdump's pcap as gzip-compressed pcapng (same packets and timestamps) with
    dpkt's pcapng writer: tcpdump itself writes only pcap."""
    import gzip

    import dpkt

    with pcap.open("rb") as src, gzip.open(target, "wb") as dst:
        reader = dpkt.pcap.Reader(src)
        writer = dpkt.pcapng.Writer(dst, snaplen=reader.snaplen, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt(buf, ts=ts)
    return target


def record_samples(out_dir: Path) -> dict[str, Path]:
    """Run the workload against the ``mta`` testbed and keep the log and capture (as pcap and
    as gzip-compressed pcapng) in ``out_dir``."""
    from research.testbed import Testbed

    with Testbed.start("mta") as tb:
        files = run_workload(tb, out_dir, capture=True)
    files["pcapng"] = pcap_to_pcapng_gz(files["pcap"], out_dir / "postfix-sessions.pcapng.gz")
    return files


FAILED_HANDSHAKE_DOMAIN = "garbage.mta.test"
"""Its testbed host answers STARTTLS with garbage (Postfix only: the Exim and Sendmail samples
were recorded before it was added)."""
FAILED_HANDSHAKE_CLIENT_VERSION = "TLS 1.2"
"""The version the client submitting that message uses."""

WORKLOAD: dict[str, str] = {
    "TLS 1.0": "tls10.mta.test",
    "TLS 1.1": "tls11.mta.test",
    "TLS 1.2": "tls12.mta.test",
    "TLS 1.3": "tls13.mta.test",
    "plain": "plain.mta.test",
}
"""Client TLS version (inbound) -> recipient domain (its relay's TLS version: outbound)."""
