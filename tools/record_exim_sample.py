"""Record research/traffic/samples/exim-mainlog.log: real Exim 4.96 (Debian 12's
exim4-daemon-light, GnuTLS) receiving mail over STARTTLS at each TLS version and relaying it to
the ``mta`` testbed.

Not part of the test suite (Exim conflicts with Postfix as Debian's MTA, so CI does not install
it). How the shipped sample was made, on a developer machine, as root::

    mkdir -p /tmp/exim && cd /tmp/exim
    apt-get download exim4-daemon-light exim4-base libidn12
    for f in *.deb; do dpkg -x "$f" root; done
    useradd --system --no-create-home --user-group Debian-exim   # the binary's compiled-in user
    apt-get install libidn12             # a library exim4 links (re-exec'd as setuid, so
                                         # LD_LIBRARY_PATH into the unpacked tree is ignored)
    mkdir -p /etc/exim4 && echo /tmp/exim/exim.conf > /etc/exim4/trusted_configs
                                         # Debian's TRUSTED_CONFIG_LIST: with -C, Exim keeps
                                         # its privileges only for a listed configuration
    .venv/bin/python tools/record_exim_sample.py /tmp/exim research/traffic/samples/

The Exim binary runs from the unpacked tree with a configuration of our own (``-C``): a daemon
on 127.0.0.1 with STARTTLS, a manualroute router sending each ``*.mta.test`` domain to its
testbed host by IP address, no DNS lookups.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import postfix_harness as h

CONFIG = """\
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
keep_environment = LD_LIBRARY_PATH
exim_path = {root}/root/usr/sbin/exim4
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
primary_hostname = exim.starttls-survey.test
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts = *
tls_certificate = {root}/smtpd-cert.pem
tls_privatekey = {root}/smtpd-key.pem
tls_require_ciphers = NORMAL:%COMPAT:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.0/8
  deny
begin routers
to_testbed:
  driver = manualroute
  domains = *.mta.test
  transport = remote_smtp
  route_list = {routes}
  self = send
discard_rest:
  driver = redirect
  data = :blackhole:
begin transports
remote_smtp:
  driver = smtp
  port = {tb_port}
  tls_verify_certificates = {root}/ca.pem
  tls_try_verify_hosts = *
  tls_verify_cert_hostnames =
  tls_require_ciphers = NORMAL:%COMPAT:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1
begin retry
* * F,1m,1m
"""


def main(root: Path, out_dir: Path) -> Path:
    from research.testbed import Testbed

    exim = root / "root/usr/sbin/exim4"
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "root/usr/lib/x86_64-linux-gnu")}
    for sub in ("spool", "log"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir()
        shutil.chown(root / sub, "Debian-exim", "Debian-exim")
    _, key = h._self_signed(root)
    shutil.chown(key, "Debian-exim", "Debian-exim")
    port = h.free_port()
    with Testbed.start("mta") as tb:
        shutil.copyfile(tb.ca_cert_path, root / "ca.pem")
        routes = " ; ".join(f"{host.name.removeprefix('mx.')} {host.addresses[0]}"
                            for host in tb.scenario.hosts)
        conf = root / "exim.conf"
        conf.write_text(CONFIG.format(root=root, port=port, tb_port=tb.smtp_port, routes=routes))
        daemon = subprocess.Popen([str(exim), "-C", str(conf), "-bdf"],
                                  env=env)
        try:
            h._wait_listening(port)
            for version, domain in h.WORKLOAD.items():
                h.send(port, f"bob@{domain}", tls_version=None if version == "plain" else version)
            h.send(port, "bob@refuses.mta.test", tls_version="TLS 1.3")
            h.connect_only(port)
            log = root / "log/mainlog"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                text = log.read_text() if log.exists() else ""
                if text.count(" Completed") >= len(h.WORKLOAD) + 1:
                    break
                time.sleep(0.5)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "exim-mainlog.log"
    shutil.copyfile(root / "log/mainlog", target)
    return target


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
