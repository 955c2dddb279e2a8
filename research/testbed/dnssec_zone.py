"""The testbed's DNSSEC: one key signs the whole ``test.`` zone; its DS record is the anchor.

The parent process makes the key (:func:`write_zone_key`, beside the certificates) so that it
can hand the trust anchor to a scanner; the DNS server loads it (:class:`ZoneSigner`) and signs
answers as a signed zone would serve them. One key with the SEP flag acts as both KSK and ZSK,
which DNSSEC allows. There are no NSEC records: negative answers are unsigned.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from research.testbed.scenario import TLD

ZONE = dns.name.from_text(TLD + ".")
KEY_FILE = "dnssec-zone-key.pem"
ANCHOR_FILE = "dnssec-anchor.txt"
ALGORITHM = dns.dnssec.Algorithm.ECDSAP256SHA256
KEY_FLAGS = 257
"""ZONE | SEP: a key-signing key, here signing every RRset too."""
SIGNATURE_LIFETIME = dt.timedelta(days=30)
TTL = 300


def anchor_path(cert_dir: Path) -> Path:
    return cert_dir / ANCHOR_FILE


def _dnskey(key: ec.EllipticCurvePrivateKey) -> DNSKEY:
    return dns.dnssec.make_dnskey(key.public_key(), ALGORITHM, flags=KEY_FLAGS)


def write_zone_key(cert_dir: Path) -> Path:
    """Make the zone key in ``cert_dir`` and write the trust anchor (``test. IN DS ...``, SHA-256
    digest) beside it; return the anchor's path. Raises OSError if the directory cannot be
    written."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = cert_dir / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ds = dns.dnssec.make_ds(ZONE, _dnskey(key), "SHA256")
    path = anchor_path(cert_dir)
    path.write_text(f"; trust anchor of the starttls-survey testbed zone\n"
                    f"{ZONE.to_text()} {TTL} IN DS {ds.to_text()}\n", encoding="utf-8")
    return path


class ZoneSigner:
    """Signs RRsets of ``test.`` with the key :func:`write_zone_key` made in ``cert_dir``.

    Raises OSError or ValueError if the key file is missing or not an EC key.
    """

    def __init__(self, cert_dir: Path) -> None:
        key = serialization.load_pem_private_key((cert_dir / KEY_FILE).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{cert_dir / KEY_FILE}: not an EC key")
        self._key = key
        self.dnskey = _dnskey(key)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._inception = now - dt.timedelta(hours=1)
        self._expiration = now + SIGNATURE_LIFETIME

    def dnskey_rrset(self) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        rrset.update_ttl(TTL)
        rrset.add(self.dnskey)
        return rrset

    def sign(self, rrset: dns.rrset.RRset, *, bogus: bool = False) -> dns.rrset.RRset:
        """The RRSIG RRset over ``rrset``; with ``bogus``, one whose signature is damaged."""
        rrsig: RRSIG = dns.dnssec.sign(rrset, self._key, ZONE, self.dnskey,
                                       inception=self._inception, expiration=self._expiration)
        signature: dns.rdata.Rdata = rrsig
        if bogus:
            damaged = bytearray(rrsig.signature)
            damaged[len(damaged) // 2] ^= 0xFF
            signature = rrsig.replace(signature=bytes(damaged))
        sigs = dns.rrset.RRset(rrset.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, rrset.rdtype)
        sigs.update_ttl(rrset.ttl)
        sigs.add(signature)
        return sigs
