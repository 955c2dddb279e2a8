"""A small scenario of the ``providers`` kind, with limits short enough for the fast tests:
shared addresses, a certificate per name, Postfix's anvil limits, a greet pause, postscreen's
pregreet test and a provider-wide limit, all in seconds rather than minutes."""

from __future__ import annotations

TLS = '''tls_min = "1.2"
tls_max = "1.3"
ciphers = "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA"'''
OK = 'expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"], webpki = "ok" }'

POOL = ["127.0.231.1", "127.0.231.2"]
POOL_NAMES = [f"c{i}-test.mx.pool.test" for i in range(4)]
SHARED = "127.0.231.5"
SHARED_NAMES = ["mail.bakery.test", "mx.florist.test", "smtp.tailor.test"]
TWIN, SOLO, RATED, PAUSED, SCREENED = (f"127.0.231.{i}" for i in (10, 11, 12, 13, 14))
RATE_LIMIT, RATE_UNIT = 4, 3
GREET_DELAY, GREET_WAIT = 2, 1
SHARED_COUNT_LIMIT = 2

_HOSTS = "\n".join([
    *(f'''[[hosts]]
name = "{name}"
addresses = {POOL!r}
{TLS}
certificate_names = ["mx.pool.test", "*.mx.pool.test"]
{OK}
''' for name in POOL_NAMES),
    *(f'''[[hosts]]
name = "{name}"
addresses = ["{SHARED}"]
{TLS}
{'certificate = "wrong_name"' if "florist" in name else ''}
expect = {{ status = "starttls", versions = ["TLS 1.2", "TLS 1.3"], webpki = "{
    'certificate-host-mismatch' if 'florist' in name else 'ok'}" }}
''' for name in SHARED_NAMES),
    f'''[[hosts]]
name = "mx.twin.test"
addresses = ["{TWIN}"]
{TLS}
{OK}

[[hosts]]
# Postfix: smtpd_client_connection_count_limit = 1
name = "mx.solo.test"
addresses = ["{SOLO}"]
{TLS}
anvil = {{ count_limit = 1 }}
{OK}

[[hosts]]
# Postfix: smtpd_client_connection_rate_limit = {RATE_LIMIT}, anvil_rate_time_unit = {RATE_UNIT}s
name = "mx.rated.test"
addresses = ["{RATED}"]
{TLS}
anvil = {{ rate_limit = {RATE_LIMIT}, rate_time_unit = {RATE_UNIT} }}
{OK}

[[hosts]]
# Sendmail: FEATURE(greet_pause, {GREET_DELAY}000)
name = "mx.paused.test"
addresses = ["{PAUSED}"]
{TLS}
greet_delay = {GREET_DELAY}
{OK}

[[hosts]]
# Postfix postscreen: postscreen_greet_wait = {GREET_WAIT}s, postscreen_greet_action = drop
name = "mx.screened.test"
addresses = ["{SCREENED}"]
{TLS}
postscreen = {{ greet_wait = {GREET_WAIT}, greet_action = "drop" }}
{OK}
'''])

_DOMAINS = "\n".join(
    f'''[[domains]]
name = "{name.split('.')[-2] if 'pool' not in name else name.split('-')[0]}.test"
mx = [[10, "{name}"]]
expect = {{ dns_status = "mx" }}
''' for name in [*POOL_NAMES, *SHARED_NAMES, "mx.twin.test", "mx.solo.test", "mx.rated.test",
                 "mx.paused.test", "mx.screened.test"])

QUICK = f'''[scenario]
name = "quick-providers"
description = "providers in seconds: shared addresses, anvil limits, greet pauses"
rtt_ms = 30

[[shared_limits]]
name = "pool"
addresses = {POOL!r}
count_limit = {SHARED_COUNT_LIMIT}

{_HOSTS}
{_DOMAINS}'''
