"""SMS bodies and their segments (what carriers bill), per GSM 03.38.

`sms_body` is the one place an SMS body is finalised: the send path (activities/deliver.py
`compose`), `campaign preview` and, through the segments stored per delivery, the report all
see the same text. It normalises the way Twilio's Smart Encoding does — typographic spaces,
quotes, dashes and the ellipsis become their GSM equivalents (SMART_ENCODING below, listed in
docs/reports.md) — so a no-break space from the `money` filter ("129,50\\xa0€") does not
turn a whole message into UCS-2 and double its price.

`segments` counts the exact body: GSM-7 (the default alphabet; the extension table's
characters take two septets, an escape and the character, never split across segments)
fits 160 septets in one segment and 153 per segment when split; anything else is UCS-2:
70 UTF-16 units in one, 67 per segment (a surrogate pair is never split).
"""

from __future__ import annotations

import re

_GSM = frozenset("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = frozenset("\f^{}\\[~]|€")  # escape + character: two septets each

# Twilio Smart Encoding's replacements (character → GSM text); letters are never changed.
SMART_ENCODING: dict[str, str] = {
    # spaces: no-break, en/em/thin/hair/figure…, narrow no-break, medium math, ideographic
    **{c: " " for c in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
       "\u2008\u2009\u200a\u202f\u205f\u3000\t"},
    # invisible: zero-width space/joiners, word joiner, soft hyphen, byte-order mark
    **{c: "" for c in "\u200b\u200c\u200d\u2060\u00ad\ufeff"},
    # double quotes and guillemets
    **{c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u02ba\u02dd\u3003"},
    # single quotes, apostrophes, primes
    **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u02b9\u02bb\u02bc\u02bd\u02be"
       "\u02bf\u02c8\u02ca\u02cb\u0060\u00b4"},
    # hyphens and dashes, the minus sign
    **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d"},
    "\u2026": "...", "\u2039": "<", "\u203a": ">", "\u02c6": "^", "\u02dc": "~",
    "\u2044": "/", "\u2215": "/", "\u2236": ":", "\u203c": "!!",
    # line and paragraph separators: a new line
    "\u2028": "\n", "\u2029": "\n",
}
_SMART = re.compile("[" + "".join(map(re.escape, SMART_ENCODING)) + "]")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def sms_body(text: str) -> str:
    """The body as it is sent and counted: Smart Encoding's replacements applied."""
    return _SMART.sub(lambda m: SMART_ENCODING[m.group(0)], text)


def is_gsm(body: str) -> bool:
    return all(c in _GSM or c in _GSM_EXT for c in body)


def _parts(units: list[int], single: int, part: int) -> int:
    """Segments for these indivisible units (their sizes): one if all fit in `single`, else
    packed in order into segments of `part`, a unit never split."""
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for size in units:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


def segments(body: str) -> int:
    """The segments of exactly this body (call sms_body first: it is what is sent)."""
    if is_gsm(body):
        return _parts([2 if c in _GSM_EXT else 1 for c in body], GSM_SINGLE, GSM_PART)
    return _parts([len(c.encode("utf-16-le")) // 2 for c in body], UCS2_SINGLE, UCS2_PART)
