"""Log line framing: the timestamp, host and program in front of an MTA's message.

Three framings are recognised:

* traditional syslog (``Nov 28 18:29:50 host postfix/smtpd[123]: ...``; also Postfix's own
  ``maillog_file``), optionally with fractional seconds;
* RFC 3339 syslog (``2026-11-28T18:29:50.123456+01:00 host postfix/smtpd[123]: ...``, rsyslog's
  high-precision format and ``journalctl -o short-iso``);
* Exim's own main log (``2026-11-28 18:37:02 [pid] 1xXN...-...-.. <= ...``, optionally with a
  ``+0100`` zone when Exim's ``log_timezone`` is set).

Traditional syslog times carry neither a year nor a zone, and Exim's carry no zone unless asked:
the caller supplies both (:class:`Clock`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from research.errors import InputError
from research.store.schema import SessionSource

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_SYSLOG = re.compile(
    r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d(?:\.\d+)?) "
    r"(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)")
_RFC3339 = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)")
_EXIM = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (?P<tz>[+-]\d{4}))?"
    r"(?: \[(?P<pid>\d+)\])? (?P<msg>.*)")


@dataclass(frozen=True)
class Line:
    """One framed log line."""

    time: dt.datetime | None
    """UTC."""
    program: str
    """``postfix/smtpd``, ``sm-mta``, ``exim`` (Exim's own log), ..."""
    pid: str
    message: str


class Clock:
    """Turns logged local times into UTC.

    ``timezone``: IANA name of the zone the server logged in (default UTC). ``year``: the year
    of traditional syslog times; None takes it from ``reference`` (the file's modification
    time), stepping back a year for dates that would lie after it (a log spanning New Year).

    Raises InputError for an unknown zone name.
    """

    def __init__(self, timezone: str = "UTC", year: int | None = None,
                 reference: dt.datetime | None = None) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {timezone!r} (use an IANA name such as "
                             "Europe/Berlin)") from None
        self.year = year
        self.reference = reference or dt.datetime.now(dt.UTC)

    def syslog(self, mon: str, day: str, clock: str) -> dt.datetime | None:
        month = _MONTHS.get(mon)
        if month is None:
            return None
        year = self.year or self.reference.year
        stamp = self._local(year, month, int(day), clock)
        if stamp is None:
            return None
        if self.year is None and stamp > self.reference + dt.timedelta(days=1):
            stamp = self._local(year - 1, month, int(day), clock)
        return stamp

    def _local(self, year: int, month: int, day: int, clock: str) -> dt.datetime | None:
        try:
            naive = dt.datetime.strptime(f"{year:04d}-{month:02d}-{day:02d} {clock}",
                                         "%Y-%m-%d %H:%M:%S.%f" if "." in clock
                                         else "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return naive.replace(tzinfo=self.zone).astimezone(dt.UTC)

    def iso(self, text: str) -> dt.datetime | None:
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=self.zone)
        return stamp.astimezone(dt.UTC)

    def exim(self, text: str, tz: str | None) -> dt.datetime | None:
        if tz:
            text = f"{text}{tz[:3]}:{tz[3:]}"
        return self.iso(text)


def frame(text: str, clock: Clock) -> Line | None:
    """The framing of one line, or None if it has none of the recognised framings."""
    m = _SYSLOG.match(text)
    if m:
        return Line(clock.syslog(m["mon"], m["day"], m["time"]), m["prog"], m["pid"] or "",
                    m["msg"])
    m = _RFC3339.match(text)
    if m:
        return Line(clock.iso(m["ts"]), m["prog"], m["pid"] or "", m["msg"])
    m = _EXIM.match(text)
    if m:
        return Line(clock.exim(m["ts"], m["tz"]), "exim", m["pid"] or "", m["msg"])
    return None


def family(program: str) -> SessionSource | None:
    """Which MTA a syslog program name belongs to: ``postfix``, ``exim``, ``sendmail``."""
    name = program.lower()
    if name.startswith("postfix"):
        return SessionSource.POSTFIX
    if name.startswith("exim"):
        return SessionSource.EXIM
    if name in ("sendmail", "sm-mta", "sm-msp-queue") or name.startswith("sm-"):
        return SessionSource.SENDMAIL
    return None
