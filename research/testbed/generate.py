"""Generated scenarios: any number of hosts with a realistic mix, for benchmarks at scale.

Every block of 100 hosts has the same mix, modelled on the 2019 population (``isc-2019``): 9
without STARTTLS, 1 refusing it, 1 TLS 1.0-only, 56 with TLS 1.0-1.2, 14 with TLS 1.0-1.3, 12
with TLS 1.2-1.3, a few odd version ranges and suite lists, a few bad certificates, and one each
of a dead host, a tarpit and an SMTP error greeting — so a survey of N hosts costs N/100 times a
survey of 100, and 100 and 1,000 hosts can be compared per host. The order within each block
is shuffled (deterministically, by ``seed``). Host *i* is ``mx.d<i>.test`` on its own loopback
address in 127.10.0.0 upwards (245 × 62,500 addresses); domain ``d<i>.test`` sends mail to it,
and every tenth domain names the next host as its backup MX.

``starttls-survey testbed generate --hosts N --out FILE`` writes such a scenario;
``Testbed.start(generated(hosts=N))`` runs one without a file of your own.

:func:`generate_concentrated` models what real top lists look like instead: the number of
domains independent of the number of addresses, and mail concentrated on a few providers
(``--domains N --addresses M``). Provider sizes follow a Zipf law (the k-th largest serves about
1/k^1.1 of the domains), each provider runs one server configuration on a pool of addresses
(about the square root of its domain count, scaled to the total asked for), and its domains
reach the pool the way big providers arrange it (behind a provider-wide limit of
:data:`PROVIDER_COUNT_LIMIT` connections at once and :data:`PROVIDER_RATE_LIMIT` a minute, above
the survey's default caps): every other provider gives each domain an MX
name of its own on two pool addresses (Microsoft 365's ``<domain>.mail.protection…``), the
others give all their domains the same few MX names (Google's ``aspmx.l.google.com``). A
provider with one domain and one address is a domain running its own server. Pools use a
wildcard certificate for their names; server kinds come from the ``isc-2019`` mix, the ones
that never answer (down, tarpit) only on single servers.
"""

from __future__ import annotations

import atexit
import math
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from research.testbed.scenario import Scenario, load_scenario

MAX_HOSTS = 245 * 62_500


@dataclass(frozen=True)
class _Kind:
    count: int
    """Hosts of this kind in every block of 100."""
    toml: str
    """The host's settings (besides name and addresses), as TOML lines."""
    expect: str


_TLS10_12 = '["TLS 1.0", "TLS 1.1", "TLS 1.2"]'
_TLS10_13 = '["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]'
_TLS12_13 = '["TLS 1.2", "TLS 1.3"]'

_MIX: tuple[_Kind, ...] = (
    _Kind(9, "starttls = false", '{ status = "no_starttls" }'),
    _Kind(1, 'behaviour = "reject_starttls"', '{ status = "starttls_rejected" }'),
    _Kind(1, 'behaviour = "down"', '{ status = "refused" }'),
    _Kind(1, 'behaviour = "tarpit"', '{ status = "timeout" }'),
    _Kind(1, 'behaviour = "greeting_error"\ngreeting = "554 5.7.1 no SMTP service here"',
          '{ status = "smtp_error" }'),
    _Kind(1, 'tls_min = "1.0"\ntls_max = "1.0"',
          '{ status = "starttls", versions = ["TLS 1.0"] }'),
    _Kind(1, 'tls_min = "1.1"\ntls_max = "1.2"',
          '{ status = "starttls", versions = ["TLS 1.1", "TLS 1.2"] }'),
    _Kind(53, 'tls_min = "1.0"\ntls_max = "1.2"',
          f'{{ status = "starttls", versions = {_TLS10_12} }}'),
    _Kind(1, 'tls_min = "1.0"\ntls_max = "1.2"\ncertificate = "self_signed"',
          f'{{ status = "starttls", versions = {_TLS10_12} }}'),
    _Kind(1, 'tls_min = "1.0"\ntls_max = "1.2"\ncertificate = "expired"',
          f'{{ status = "starttls", versions = {_TLS10_12} }}'),
    _Kind(1, 'tls_min = "1.0"\ntls_max = "1.2"\nciphers = "HIGH:!aNULL"',
          f'{{ status = "starttls", versions = {_TLS10_12} }}'),
    _Kind(13, 'tls_min = "1.0"\ntls_max = "1.3"',
          f'{{ status = "starttls", versions = {_TLS10_13} }}'),
    _Kind(1, 'tls_min = "1.0"\ntls_max = "1.3"\ncertificate = "wrong_name"',
          f'{{ status = "starttls", versions = {_TLS10_13} }}'),
    _Kind(11, 'tls_min = "1.2"\ntls_max = "1.3"',
          f'{{ status = "starttls", versions = {_TLS12_13} }}'),
    _Kind(1, 'tls_min = "1.2"\ntls_max = "1.3"\ncertificate = "self_signed"',
          f'{{ status = "starttls", versions = {_TLS12_13} }}'),
    _Kind(2, 'tls_min = "1.2"\ntls_max = "1.2"\nciphers = "AES128-SHA:AES256-SHA"',
          '{ status = "starttls", versions = ["TLS 1.2"] }'),
    _Kind(1, 'tls_min = "1.3"\ntls_max = "1.3"',
          '{ status = "starttls", versions = ["TLS 1.3"] }'),
)
assert sum(kind.count for kind in _MIX) == 100


def address(index: int) -> str:
    """The loopback address of generated host ``index`` (0-based)."""
    return f"127.{10 + index // 62_500}.{(index // 250) % 250}.{index % 250 + 1}"


def generate(hosts: int, *, seed: int = 0, rtt_ms: float = 0.0, name: str | None = None) -> str:
    """The TOML text of a scenario with ``hosts`` hosts and as many domains.

    Raises ValueError if ``hosts`` is not between 1 and :data:`MAX_HOSTS`.
    """
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    rng = random.Random(seed)
    block = [kind for kind in _MIX for _ in range(kind.count)]
    kinds: list[_Kind] = []
    while len(kinds) < hosts:
        rng.shuffle(block)
        kinds.extend(block)
    width = max(5, len(str(hosts - 1)))
    label = name or f"generated-{hosts}"
    out = [
        f"# Generated by research.testbed.generate: {hosts} hosts, seed {seed}.",
        "[scenario]",
        f'name = "{label}"',
        f'description = "{hosts} generated hosts with the isc-2019 mix (seed {seed})"',
        f"rtt_ms = {float(rtt_ms)!r}",
        "",
    ]
    for i, kind in enumerate(kinds[:hosts]):
        out += ["[[hosts]]", f'name = "mx.d{i:0{width}d}.test"',
                f'addresses = ["{address(i)}"]', kind.toml, f"expect = {kind.expect}", ""]
    for i in range(hosts):
        mx = f'[10, "mx.d{i:0{width}d}.test"]'
        if i % 10 == 9 and hosts > 1:
            mx += f', [20, "mx.d{(i + 1) % hosts:0{width}d}.test"]'
        out += ["[[domains]]", f'name = "d{i:0{width}d}.test"', f"rank = {i + 1}",
                f"mx = [{mx}]", 'expect = { dns_status = "mx" }', ""]
    return "\n".join(out)


ZIPF_EXPONENT = 1.1
"""Provider sizes: the k-th largest serves about 1/k^1.1 of the domains, as in real top lists."""
PROVIDER_COUNT_LIMIT = 16
"""Connections from one client at once across a generated provider's pool (a
``[[shared_limits]]`` entry, which also makes the testbed count them across the pool)."""
PROVIDER_RATE_LIMIT = 1200
"""Connections from one client per minute across a generated provider's pool."""
_UNREACHABLE = frozenset({'behaviour = "down"', 'behaviour = "tarpit"'})


def _zipf_counts(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` Zipf-sized counts, largest first, each at least 1."""
    weights = [k ** -ZIPF_EXPONENT for k in range(1, parts + 1)]
    scale = (total - parts) / sum(weights)
    raw = [w * scale for w in weights]
    counts = [1 + math.floor(r) for r in raw]
    # Largest remainders first, ties at random: the counts add up to the total exactly.
    order = sorted(range(parts), key=lambda i: (raw[i] - math.floor(raw[i]), rng.random()),
                   reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _pool_sizes(domains: list[int], addresses: int) -> list[int]:
    """Addresses per provider, about the square root of its domains, scaled to ``addresses``
    in all (within a few), each between 1 and its domain count."""
    low, high = 0.0, float(addresses)
    sizes: list[int] = []
    for _ in range(60):
        scale = (low + high) / 2
        sizes = [min(d, max(1, round(scale * math.sqrt(d)))) for d in domains]
        if sum(sizes) < addresses:
            low = scale
        else:
            high = scale
    return sizes


def generate_concentrated(domains: int, addresses: int, *, seed: int = 0, rtt_ms: float = 0.0,
                          name: str | None = None) -> str:
    """The TOML text of a scenario of ``domains`` domains on about ``addresses`` addresses,
    concentrated on Zipf-sized providers (module doc).

    Raises ValueError unless 1 <= ``addresses`` <= ``domains`` and both fit the address space.
    """
    if not 1 <= addresses <= domains or domains > MAX_HOSTS:
        raise ValueError(f"need 1 <= addresses ({addresses}) <= domains ({domains}) "
                         f"<= {MAX_HOSTS}")
    rng = random.Random(seed)
    providers = max(1, addresses // 2)
    served = _zipf_counts(domains, providers, rng)
    pools = _pool_sizes(served, addresses)
    reachable = [k for k in _MIX if k.toml not in _UNREACHABLE]
    block = [kind for kind in _MIX for _ in range(kind.count)]
    rng.shuffle(block)
    ranks = list(range(1, domains + 1))
    rng.shuffle(ranks)
    width = max(5, len(str(domains - 1)))
    label = name or f"concentrated-{domains}-{addresses}"
    out = [
        f"# Generated by research.testbed.generate: {domains} domains on {sum(pools)} addresses "
        f"of {providers} providers (Zipf {ZIPF_EXPONENT}), seed {seed}.",
        "[scenario]",
        f'name = "{label}"',
        f'description = "{domains} domains concentrated on {providers} providers (seed {seed})"',
        f"rtt_ms = {float(rtt_ms)!r}",
        "",
    ]
    domain_lines: list[str] = []
    limit_lines: list[str] = []
    next_address = next_domain = 0
    for k, (count, size) in enumerate(zip(served, pools, strict=True)):
        kind = block[k % len(block)]
        if size > 1 and kind.toml in _UNREACHABLE:
            kind = reachable[k % len(reachable)]
        pool = [address(next_address + i) for i in range(size)]
        next_address += size
        provider = f"p{k:0{width}d}.test"
        if size > 1:
            limit_lines += ["[[shared_limits]]", f'name = "{provider}"',
                            "addresses = [" + ", ".join(f'"{ip}"' for ip in pool) + "]",
                            f"count_limit = {PROVIDER_COUNT_LIMIT}",
                            f"rate_limit = {PROVIDER_RATE_LIMIT}", ""]
        names = [f"d{next_domain + i:0{width}d}" for i in range(count)]
        next_domain += count
        certificate = _pool_certificate(kind, provider) if count > 1 else ""
        if count == 1 and size == 1:
            # A domain running its own server.
            mx = {names[0]: [f"mx.{names[0]}.test"]}
            hosts = {f"mx.{names[0]}.test": pool}
        elif k % 2 == 0:
            # An MX name of its own for each domain, on two of the pool's addresses.
            mx = {d: [f"{d}-test.mx.{provider}"] for d in names}
            hosts = {f"{d}-test.mx.{provider}": sorted({pool[i % size], pool[(i + 1) % size]})
                     for i, d in enumerate(names)}
        else:
            # The same few MX names for every domain, each on part of the pool.
            shared = [f"mx{j + 1}.{provider}" for j in range(min(2, size))]
            mx = {d: shared for d in names}
            hosts = {h: pool[j::len(shared)] for j, h in enumerate(shared)}
        for host, ips in hosts.items():
            out += ["[[hosts]]", f'name = "{host}"',
                    "addresses = [" + ", ".join(f'"{ip}"' for ip in ips) + "]", kind.toml]
            if certificate:
                out.append(certificate)
            out += [f"expect = {kind.expect}", ""]
        for d in names:
            records = ", ".join(f'[{10 * (j + 1)}, "{h}"]' for j, h in enumerate(mx[d]))
            domain_lines += ["[[domains]]", f'name = "{d}.test"',
                             f"rank = {ranks[int(d[1:])]}", f"mx = [{records}]",
                             'expect = { dns_status = "mx" }', ""]
    return "\n".join(out + limit_lines + domain_lines)


def _pool_certificate(kind: _Kind, provider: str) -> str:
    """One wildcard certificate for a pool's names (a wrong one for the ``wrong_name`` kind)."""
    if "starttls = false" in kind.toml or "behaviour" in kind.toml:
        return ""
    if 'certificate = "wrong_name"' in kind.toml:
        return f'certificate_names = ["*.wrong.{provider}"]'
    return f'certificate_names = ["*.mx.{provider}", "*.{provider}"]'


def write_generated(path: str | Path, hosts: int, *, seed: int = 0, rtt_ms: float = 0.0) -> Path:
    """Write :func:`generate`'s scenario to ``path`` (parents created); return the path.

    Raises ValueError for a bad ``hosts``, OSError if the file cannot be written.
    """
    return _write(path, generate(hosts, seed=seed, rtt_ms=rtt_ms, name=Path(path).stem))


def write_concentrated(path: str | Path, domains: int, addresses: int, *, seed: int = 0,
                       rtt_ms: float = 0.0) -> Path:
    """Write :func:`generate_concentrated`'s scenario to ``path``; return the path.

    Raises ValueError for bad counts, OSError if the file cannot be written.
    """
    return _write(path, generate_concentrated(domains, addresses, seed=seed, rtt_ms=rtt_ms,
                                              name=Path(path).stem))


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


_tmp_dir: Path | None = None


def _scratch() -> Path:
    global _tmp_dir
    if _tmp_dir is None:
        _tmp_dir = Path(tempfile.mkdtemp(prefix="starttls-generated-"))
        atexit.register(shutil.rmtree, _tmp_dir, ignore_errors=True)
    return _tmp_dir


def generated(hosts: int, *, seed: int = 0, rtt_ms: float = 0.0) -> Scenario:
    """A generated scenario, loaded and validated; its file lives in a temporary directory
    removed when the interpreter exits. Raises ValueError for a bad ``hosts``."""
    path = write_generated(_scratch() / f"generated-{hosts}-{seed}.toml", hosts, seed=seed,
                           rtt_ms=rtt_ms)
    return load_scenario(path)


def concentrated(domains: int, addresses: int, *, seed: int = 0, rtt_ms: float = 0.0
                 ) -> Scenario:
    """:func:`generate_concentrated`'s scenario, loaded and validated, like :func:`generated`.
    Raises ValueError for bad counts."""
    path = write_concentrated(_scratch() / f"concentrated-{domains}-{addresses}-{seed}.toml",
                              domains, addresses, seed=seed, rtt_ms=rtt_ms)
    return load_scenario(path)
