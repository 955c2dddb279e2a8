"""SSL 2.0 (draft-hickman-netscape-ssl-00): a CLIENT-HELLO and the SERVER-HELLO it draws.

Built here rather than by nassl, whose legacy SSL 2.0 client leaks about 35 KB of native memory
on every handshake (a survey's memory must not grow with its hosts). The server sees the same
CLIENT-HELLO; the SERVER-HELLO lists every cipher the server shares with the client, so one
hello answers the whole lane, and the handshake is abandoned there.
"""

from __future__ import annotations

from collections.abc import Sequence

# Cipher kinds are three bytes each.
_SSL2_CIPHER_KINDS = {
    "RC4-MD5": b"\x01\x00\x80", "EXP-RC4-MD5": b"\x02\x00\x80",
    "RC2-CBC-MD5": b"\x03\x00\x80", "EXP-RC2-CBC-MD5": b"\x04\x00\x80",
    "IDEA-CBC-MD5": b"\x05\x00\x80", "DES-CBC-MD5": b"\x06\x00\x40",
    "DES-CBC3-MD5": b"\x07\x00\xc0", "RC4-64-MD5": b"\x08\x00\x80",
}
_SSL2_MSG_SERVER_HELLO = 4


def ssl2_client_hello(openssl_names: Sequence[str], challenge: bytes) -> bytes:
    """An SSL 2.0 CLIENT-HELLO record offering ``openssl_names`` (no session id).

    Raises KeyError for a name that is no SSL 2.0 cipher.
    """
    specs = b"".join(_SSL2_CIPHER_KINDS[name] for name in openssl_names)
    body = (bytes([1]) + b"\x00\x02" + len(specs).to_bytes(2, "big") + b"\x00\x00"
            + len(challenge).to_bytes(2, "big") + specs + challenge)
    return (0x8000 | len(body)).to_bytes(2, "big") + body


def parse_ssl2_server_hello(record: bytes) -> tuple[list[str], bytes] | None:
    """The OpenSSL names of the ciphers and the certificate (DER) in an SSL 2.0 SERVER-HELLO
    record (header included), or None if ``record`` is anything else or incomplete."""
    if len(record) < 2 or not record[0] & 0x80:
        return None
    length = ((record[0] & 0x7F) << 8) | record[1]
    body = record[2:2 + length]
    if len(body) < length or length < 11 or body[0] != _SSL2_MSG_SERVER_HELLO:
        return None
    cert_len = int.from_bytes(body[5:7], "big")
    specs_len = int.from_bytes(body[7:9], "big")
    if body[3:5] != b"\x00\x02" or specs_len % 3 or 11 + cert_len + specs_len > length:
        return None
    certificate = body[11:11 + cert_len]
    specs = body[11 + cert_len:11 + cert_len + specs_len]
    by_kind = {kind: name for name, kind in _SSL2_CIPHER_KINDS.items()}
    kinds = [specs[i:i + 3] for i in range(0, len(specs), 3)]
    return [by_kind[k] for k in kinds if k in by_kind], certificate


def record_complete(record: bytes) -> bool:
    """Whether ``record`` holds a whole SSL 2.0 record, or enough to tell it is none."""
    if record and not record[0] & 0x80:
        return True  # a TLS alert, or garbage: certainly no SERVER-HELLO
    return len(record) >= 2 and len(record) >= 2 + (((record[0] & 0x7F) << 8) | record[1])
