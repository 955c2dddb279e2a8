"""Charts of what an enforcing sender would meet: RFC 8460 result types and per-domain readiness
(:mod:`research.analysis.enforcement`)."""

from __future__ import annotations

from matplotlib.figure import Figure

from research.analysis import READINESS, enforcement_readiness, failure_types
from research.plots.style import (
    COLOUR_FAILS,
    COLOUR_OK,
    COLOUR_OTHER,
    COLOUR_PARTLY,
    COLOUR_UNKNOWN,
    hbars,
    new_figure,
    no_data,
    scan_caption,
    styled,
)
from research.store.results import SurveyResults
from research.store.schema import Readiness, TlsResult, Unit

_RESULT_COLOURS: dict[str, str] = {
    TlsResult.OK: COLOUR_OK, TlsResult.STARTTLS_NOT_SUPPORTED: COLOUR_FAILS,
    TlsResult.CERTIFICATE_NOT_TRUSTED: "#CC79A7", TlsResult.CERTIFICATE_EXPIRED: COLOUR_PARTLY,
    TlsResult.CERTIFICATE_HOST_MISMATCH: "#F0E442", TlsResult.VALIDATION_FAILURE: COLOUR_UNKNOWN,
    TlsResult.TLSA_INVALID: "#0072B2", TlsResult.DNSSEC_INVALID: "#56B4E9"}
_READINESS_COLOURS: dict[str, str] = {
    Readiness.ENFORCED_OK: COLOUR_OK, Readiness.ENFORCED_DEGRADED: COLOUR_PARTLY,
    Readiness.ENFORCED_LOSING: COLOUR_FAILS, Readiness.NOT_ENFORCED_OK: "#56B4E9",
    Readiness.NOT_ENFORCED_FAILING: "#CC79A7", Readiness.NOT_MEASURED: COLOUR_OTHER,
    Readiness.UNREACHABLE: COLOUR_UNKNOWN}


@styled
def plot_failure_types(results: SurveyResults) -> Figure:
    """Horizontal bars, one panel per unit: how sessions of an enforcing sender would end, by
    RFC 8460 result type (:func:`research.analysis.enforcement.failure_types`): MX hosts under
    WebPKI (what MTA-STS demands), (domain, MX host) pairs where DANE is in force, and domains
    with an MTA-STS record (fetching their policy). Bars carry "count (share)"."""
    table = failure_types(results)
    units = [(Unit.MX_HOST, "MX hosts: WebPKI (MTA-STS rules)"),
             (Unit.DANE_HOST, "MX hosts with DANE in force"),
             (Unit.STS_DOMAIN, "Domains with an MTA-STS record: policy fetch")]
    fig = new_figure(13, 4.6)
    axes = fig.subplots(1, len(units))
    for ax, (unit, title) in zip(axes, units, strict=True):
        rows = table[table["unit"] == unit]
        total = int(rows["total"].max()) if len(rows) else 0
        names = [str(r) for r in rows["result"]]
        hbars(ax, names, [int(c) for c in rows["count"]], total,
              [_RESULT_COLOURS.get(n, COLOUR_OTHER) for n in names])
        ax.set_title(f"{title} (n={total})", fontsize=10)
        ax.set_xlabel("Count")
        if not total:
            no_data(ax)
    axes[0].set_ylabel("RFC 8460 result type ('ok': the session succeeds)")
    fig.suptitle("What an enforcing sender would meet, by RFC 8460 result type", fontsize=12,
                 fontweight="bold")
    scan_caption(fig, "left: unique MX hosts that answered SMTP (a host is ok only if every "
                 "answering IP is); middle: (domain, MX host) pairs with a DNSSEC-secure MX "
                 "RRset and TLSA records; right: domains with a valid _mta-sts TXT record",
                 results.meta)
    return fig


@styled
def plot_enforcement_readiness(results: SurveyResults) -> Figure:
    """Horizontal bars: domains with MX hosts by enforcement readiness
    (:data:`research.analysis.enforcement.READINESS`), with "count (share)"."""
    ready = enforcement_readiness(results)
    mail = ready[ready["readiness"] != Readiness.NO_MAIL]
    cats = [c for c in READINESS if c != Readiness.NO_MAIL]
    counts = [int((mail["readiness"] == c).sum()) for c in cats]
    fig = new_figure(10, 4.2)
    ax = fig.add_subplot()
    hbars(ax, cats, counts, len(mail), [_READINESS_COLOURS[c] for c in cats])
    ax.set_xlabel("Domains")
    ax.set_ylabel("Readiness")
    ax.set_title("Could a sender enforce TLS? MTA-STS, DANE and WebPKI per domain")
    if not len(mail):
        no_data(ax)
    scan_caption(fig, f"domains with MX hosts (n={len(mail)}); 'enforced' = MTA-STS in enforce "
                 "mode or DANE in force (the worse of the two counts)", results.meta)
    return fig
