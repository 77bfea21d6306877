"""SMS segment counting (what carriers bill): GSM-7 text fits 160 characters in one segment
and 153 per segment when split; anything outside GSM-7 is UCS-2: 70 and 67."""

from __future__ import annotations

import math

_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOP"
           "QRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = set("^{}\\[~]|€")  # each takes two septets


def segments(text: str) -> int:
    if all(c in _GSM or c in _GSM_EXT for c in text):
        length = sum(2 if c in _GSM_EXT else 1 for c in text)
        return 1 if length <= 160 else math.ceil(length / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
