"""The render budget's numbers, and the checks that refuse an operation *before* it builds
a value too large (budget.py applies them while a template renders)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinja2.sandbox import SecurityError

MAX_TEXT = 100_000  # characters: one message part, or any one value a template builds
MAX_BUILT = 2_000_000  # characters built by all operations of one render together
MAX_ITEMS = 100_000  # items in one list a template builds (jinja's range() has the same cap)
MAX_INT_BITS = 4_096  # ≈ 1,233 decimal digits
MAX_STEPS = 200_000  # template lines run + Python calls made, per render
RENDER_SECONDS = 1.0  # wall-clock time per render
MAX_JSON_INDENT = 16
MAX_LIPSUM = 100  # paragraphs, and words per paragraph

_WIDTH = re.compile(r"\d+")


class BudgetExceeded(SecurityError):
    """The template asked for more than the render budget allows."""


def refuse_if(condition: bool, what: str) -> None:
    if condition:
        raise BudgetExceeded(f"{what} would be over the render budget")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else 0


def check_format(fmt: Any, args: Any = ()) -> None:
    """`'%1000000000s' % x`, `'{:>1000000000}'.format(x)`: widths and precisions are text
    the template asks to be built."""
    if isinstance(fmt, str):
        refuse_if(any(len(w) > 6 or int(w) > MAX_TEXT for w in _WIDTH.findall(fmt)),
                   "a format width")
    values = args if isinstance(args, (tuple, list)) else (args,)
    refuse_if(any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_TEXT
                   for v in values), "a format width")


def check_join(items: Any, sep: Any) -> list[Any]:
    items = list(items)
    refuse_if(len(items) > MAX_ITEMS, "join")
    refuse_if(_size(sep) * len(items) + sum(map(_size, items)) > MAX_TEXT, "join")
    return items


def check_binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints:  # float powers overflow at once, in C
        if abs(left) > 1 and right > 0:
            refuse_if(right > MAX_INT_BITS or left.bit_length() * right > MAX_INT_BITS,
                       "the exponent")
    elif operator == "*" and ints:
        refuse_if(left.bit_length() + right.bit_length() > MAX_INT_BITS, "the product")
    elif operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(n, int) and isinstance(seq, (str, list, tuple)):
                refuse_if(len(seq) * n > (MAX_TEXT if isinstance(seq, str) else MAX_ITEMS),
                           "repeating it")
    elif operator == "%" and isinstance(left, str):
        check_format(left, right)


# str methods a template may call; the ones that can multiply a size are checked first.
STR_CHECKS: dict[str, Callable[[str, tuple[Any, ...], dict[str, Any]], None]] = {
    "ljust": lambda s, a, k: _check_width(a), "rjust": lambda s, a, k: _check_width(a),
    "center": lambda s, a, k: _check_width(a), "zfill": lambda s, a, k: _check_width(a),
    "replace": lambda s, a, k: _check_replace(s, *a[:3]),
    "expandtabs": lambda s, a, k: refuse_if(
        s.count("\t") * int(a[0] if a else k.get("tabsize", 8)) > MAX_TEXT, "expandtabs"),
}
STR_REFUSED = {"translate", "maketrans"}


def _check_width(args: tuple[Any, ...]) -> None:
    refuse_if(bool(args) and isinstance(args[0], int) and args[0] > MAX_TEXT, "the width")


def _check_replace(s: Any, old: Any = "", new: Any = "", count: Any = -1) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        hits = len(s) + 1 if old == "" else s.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        refuse_if(len(s) + hits * len(new) > MAX_TEXT, "replace")


def pre_checks(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Filters that multiply a size by an argument, checked before they run. Returns the
    value to filter (`join` reads an iterable once, here, to measure it)."""
    arg = args[0] if args else None
    if name == "center":
        _check_width((arg if arg is not None else kwargs.get("width", 80),))
    elif name == "indent":
        width = arg if arg is not None else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else width
        lines = str(value).count("\n") + 1
        refuse_if(not isinstance(per_line, int) or per_line * lines > MAX_TEXT, "indent")
    elif name == "replace":
        _check_replace(str(value), *args[:3], **{k: v for k, v in kwargs.items()
                                                if k == "count"})
    elif name == "join":
        sep = arg if arg is not None else kwargs.get("d", "")
        if not isinstance(value, (str, dict)) and kwargs.get("attribute") is None:
            return check_join(value, sep)
    elif name == "wordwrap":
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
        width = arg if arg is not None else kwargs.get("width", 79)
        refuse_if(not isinstance(width, int) or width < 1 or
                   len(str(value)) // width * len(str(wrap)) > MAX_TEXT, "wordwrap")
    elif name == "format":
        check_format(value, (*args, *kwargs.values()))
    elif name == "tojson":
        indent = arg if arg is not None else kwargs.get("indent")
        refuse_if(indent is not None and (not isinstance(indent, int) or
                                           indent > MAX_JSON_INDENT), "tojson's indent")
    elif name in ("batch", "slice"):
        refuse_if(isinstance(arg, int) and arg > MAX_ITEMS, name)
    elif name == "sum":
        start = args[1] if len(args) > 1 else kwargs.get("start", 0)
        refuse_if(not isinstance(start, (int, float)), "sum of anything but numbers")
    return value
