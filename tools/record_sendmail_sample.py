"""Record research/traffic/samples/sendmail-maillog.log: real Sendmail 8.17 (Debian 12's
sendmail-bin, OpenSSL) receiving mail over STARTTLS at each TLS version and relaying it to the
``mta`` testbed.

Not part of the test suite (Sendmail conflicts with Postfix as Debian's MTA, so CI does not
install it). How the shipped sample was made, on a developer machine, as root::

    mkdir -p /tmp/sm && cd /tmp/sm
    apt-get download sendmail-bin sendmail-base sendmail-cf libmilter1.0.1 liblockfile1
    for f in *.deb; do dpkg -x "$f" root; done
    apt-get install m4 libwrap0          # to build sendmail.cf; a library sendmail links
    .venv/bin/python tools/record_sendmail_sample.py /tmp/sm research/traffic/samples/

Sendmail logs only through syslog(3). This script binds ``/dev/log`` itself (the machine had
no syslog daemon) and writes each message as rsyslog's traditional file format does: the
``<PRI>`` dropped and the host name inserted after the timestamp; the message text is
Sendmail's, unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import postfix_harness as h

MC = """\
divert(-1)
divert(0)dnl
include(`{cf}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `sm.starttls-survey.test')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`QUEUE_DIR', `{root}/queue')dnl
define(`STATUS_FILE', `{root}/statistics')dnl
define(`ALIAS_FILE', `{root}/aliases')dnl
define(`confSERVICE_SWITCH_FILE', `{root}/service.switch')dnl
define(`confHOSTS_FILE', `/etc/hosts')dnl
define(`confCACERT_PATH', `{root}/certs')dnl
define(`confCACERT', `{root}/certs/ca.pem')dnl
define(`confSERVER_CERT', `{root}/smtpd-cert.pem')dnl
define(`confSERVER_KEY', `{root}/smtpd-key.pem')dnl
define(`confCIPHER_LIST', `DEFAULT:@SECLEVEL=0')dnl
define(`confLOG_LEVEL', `9')dnl
define(`confDONT_BLAME_SENDMAIL', `GroupReadableKeyFile,GroupWritableDirPathSafe,TrustStickyBit')dnl
define(`confTO_ICONNECT', `10s')dnl
define(`confTO_CONNECT', `10s')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {tb_port}')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {tb_port}')dnl
FEATURE(`mailertable', `hash -o {root}/mailertable')dnl
FEATURE(`nouucp', `reject')dnl
FEATURE(`accept_unresolvable_domains')dnl
define(`confPID_FILE', `{root}/sendmail.pid')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""


@contextlib.contextmanager
def syslog_to_file(path: Path, hostname: str = "sm") -> Iterator[Path]:
    """Receive syslog(3) datagrams on /dev/log and append them to ``path`` in the traditional
    file format (``Mmm dd hh:mm:ss host tag[pid]: text``)."""
    dev_log = Path("/dev/log")
    if dev_log.exists() or dev_log.is_symlink():
        raise RuntimeError("/dev/log exists: a syslog daemon runs; use its log instead")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dev_log))
    os.chmod(dev_log, 0o666)
    sock.settimeout(0.2)
    stop = threading.Event()

    def pump() -> None:
        with path.open("a", encoding="utf-8") as out:
            while not stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                text = data.decode("utf-8", "replace").rstrip("\n\x00")
                m = re.match(r"<\d+>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (.*)", text, re.S)
                if m:
                    out.write(f"{m.group(1)} {hostname} {m.group(2)}\n")
                    out.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        sock.close()
        dev_log.unlink(missing_ok=True)


def main(root: Path, out_dir: Path) -> Path:
    from research.testbed import Testbed

    sendmail = root / "root/usr/libexec/sendmail/sendmail"
    makemap = root / "root/usr/libexec/sendmail/makemap"
    cf_dir = root / "root/usr/share/sendmail/cf"
    for sub in ("queue", "certs"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(mode=0o700)
    h._self_signed(root)
    (root / "aliases").write_text("postmaster: root\n")
    (root / "service.switch").write_text("hosts files\naliases files\n")
    (root / "statistics").touch()
    port = h.free_port()
    log_path = root / "maillog"
    log_path.unlink(missing_ok=True)
    with Testbed.start("mta") as tb:
        shutil.copyfile(tb.ca_cert_path, root / "certs/ca.pem")
        table = "".join(f"{host.name.removeprefix('mx.')}\tesmtp:[{host.addresses[0]}]\n"
                        for host in tb.scenario.hosts)
        (root / "mailertable").write_text(table)
        mc = root / "sendmail.mc"
        mc.write_text(MC.format(cf=cf_dir, root=root, tb_port=tb.smtp_port, port=port))
        cf = root / "sendmail.cf"
        cf.write_text(subprocess.run(["m4", str(mc)], check=True, capture_output=True,
                                     text=True).stdout)
        subprocess.run([str(makemap), "-C", str(cf), "hash", str(root / "mailertable")],
                       input=table, text=True, check=True)
        subprocess.run([str(sendmail), "-C", str(cf), "-bi"], check=False,
                       capture_output=True)
        with syslog_to_file(log_path):
            daemon = subprocess.Popen([str(sendmail), "-C", str(cf), "-bD", "-q10s",
                                       "-L", "sm-mta"])
            try:
                h._wait_listening(port, timeout=150)
                for version, domain in h.WORKLOAD.items():
                    h.send(port, f"bob@{domain}",
                           tls_version=None if version == "plain" else version)
                h.send(port, "bob@refuses.mta.test", tls_version="TLS 1.3")
                h.connect_only(port)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    text = log_path.read_text() if log_path.exists() else ""
                    if text.count("stat=Sent") >= len(h.WORKLOAD) and "refuses" in text and (
                            "stat=Service unavailable" in text or "dsn=5" in text):
                        break
                    time.sleep(0.5)
                time.sleep(1.0)
            finally:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(10)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "sendmail-maillog.log"
    shutil.copyfile(log_path, target)
    return target


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
