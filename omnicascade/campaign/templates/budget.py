"""The render budget: a template may use so much time, so many steps and build so much text,
and no more, whatever it is made of.

Marketers' templates run inside the worker, beside every other customer's send. The jinja2
sandbox keeps them away from Python's internals; this module keeps them from burning the
worker's CPU and memory:

- **steps and time**: while a template renders, a trace function counts every line of the
  template's own code and every Python call it makes (loops, macros, filters such as
  `lipsum`), and stops the render past MAX_STEPS or RENDER_SECONDS;
- **size, before it is allocated**: every operation that can multiply a value's size by a
  number the template chooses (`*`, `**`, `%`, `ljust`/`center`/`zfill`, `replace`,
  `join`, `indent`, `wordwrap`, `format`, `tojson`, `lipsum`, …) is checked *before* it
  runs; the result of every operation that builds text (those, `+`, `~`, every filter) is
  capped at MAX_TEXT characters and counted against MAX_BUILT for the whole render;
- **output**: the rendered text is counted as it streams and capped at MAX_TEXT.

Over budget, a render raises BudgetExceeded (a SecurityError), which the caller reports as
a template problem: validation and preview say so, a send fails the step with `template`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import BuiltinFunctionType, FrameType
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum

from omnicascade.campaign.templates.limits import (
    MAX_BUILT,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_LIPSUM,
    MAX_STEPS,
    MAX_TEXT,
    RENDER_SECONDS,
    STR_CHECKS,
    STR_REFUSED,
    BudgetExceeded,
    check_binop,
    check_format,
    check_join,
    pre_checks,
    refuse_if,
)
from omnicascade.telemetry import RENDER_REFUSALS

TEMPLATE_FILE = "<template>"  # the file name jinja2 gives code compiled from a string


class Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.built = 0
        self.deadline = time.monotonic() + RENDER_SECONDS

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise BudgetExceeded(f"over the render budget of {MAX_STEPS:,} steps "
                                 f"(a loop too long?)")
        if not self.steps & 0xFF:
            if time.monotonic() > self.deadline:
                raise BudgetExceeded(f"over the render budget of {RENDER_SECONDS:g} s")
            # Hand the GIL over: a long render must not slow the event loop and the short
            # database transactions that share this process (a conversion waits on those).
            time.sleep(0)

    def charge(self, chars: int) -> None:
        self.built += chars
        if self.built > MAX_BUILT:
            raise BudgetExceeded(f"builds more than {MAX_BUILT:,} characters in all")


_current = threading.local()


def _budget() -> Budget | None:
    return getattr(_current, "budget", None)


@contextmanager
def budgeted() -> Iterator[Budget]:
    """Run a render under a fresh budget on this thread (steps, time and size)."""
    budget = Budget()
    previous_budget, previous_trace = _budget(), sys.gettrace()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            budget.tick()
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        budget.tick()
        return local if frame.f_code.co_filename == TEMPLATE_FILE else None

    _current.budget = budget
    sys.settrace(calls)
    try:
        yield budget
    except BudgetExceeded:
        RENDER_REFUSALS.inc()  # the operator sees a template that keeps hitting the limit
        raise
    finally:
        sys.settrace(previous_trace)
        _current.budget = previous_budget


def stream(chunks: Iterator[str]) -> str:
    """Join a render's output, refusing it as soon as it is longer than MAX_TEXT."""
    out: list[str] = []
    length = 0
    for chunk in chunks:
        length += len(chunk)
        if length > MAX_TEXT:
            raise BudgetExceeded(f"renders more than {MAX_TEXT:,} characters")
        out.append(chunk)
    return "".join(out)


def checked(value: Any) -> Any:
    """Cap and count what an operation built."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise BudgetExceeded(f"builds a text longer than {MAX_TEXT:,} characters")
        if (budget := _budget()) is not None:
            budget.charge(len(value))
    elif isinstance(value, (list, tuple, dict)) and len(value) > MAX_ITEMS:
        raise BudgetExceeded(f"builds a list longer than {MAX_ITEMS:,} items")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded("builds a number with too many digits")
    return value


class _Generator(CodeGenerator):
    """`a ~ b` compiles to a plain join; route it through `checked` so a loop that doubles
    a string stops at MAX_TEXT instead of at the memory limit."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox and the render budget (StrictUndefined unless a trial
    render asks for leniency)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    checked = staticmethod(checked)

    def __init__(self, *, autoescape: bool, filters: dict[str, Callable[..., Any]],
                 undefined: type[Undefined] = StrictUndefined) -> None:
        super().__init__(undefined=undefined, autoescape=autoescape)
        self.filters.update(filters)
        for name in list(self.filters):
            self.filters[name] = _budgeted_filter(name, self.filters[name])
        self.globals["lipsum"] = _lipsum

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return checked(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """jinja2 hands templates a sandboxed `str.format`/`format_map`; check its widths."""
        inner = super().wrap_str_format(value)
        if inner is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        def format_checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if is_map and args else {}
            values = tuple(mapping.values()) if isinstance(mapping, dict) else ()
            check_format(fmt, values if is_map else (*args, *kwargs.values()))
            return checked(inner(*args, **kwargs))  # type: ignore[no-any-return]

        return format_checked

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(__obj, BuiltinFunctionType) and isinstance(__obj.__self__, str):
            name = __obj.__name__
            if name in STR_REFUSED:
                raise SecurityError(f"str.{name} is not available in templates")
            if name == "join" and args:  # materialise once: a generator is read only once
                args = (check_join(args[0], __obj.__self__), *args[1:])
            elif name in STR_CHECKS:
                STR_CHECKS[name](__obj.__self__, args, kwargs)
        return checked(super().call(__context, __obj, *args, **kwargs))


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    refuse_if(not all(isinstance(v, int) and v <= MAX_LIPSUM for v in (n, min, max)), "lipsum")
    return checked(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def _budgeted_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, with its pre-checks and its result capped and counted. Keeps jinja's
    pass_context/pass_environment markers (they live on the function object)."""
    passes = getattr(fn, "jinja_pass_arg", None)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        skip = 1 if passes is not None else 0  # the context/environment comes first
        if len(args) <= skip:
            return checked(fn(*args, **kwargs))
        value = pre_checks(name, args[skip], args[skip + 1:], kwargs)
        return checked(fn(*args[:skip], value, *args[skip + 1:], **kwargs))

    if passes is not None:
        wrapped.jinja_pass_arg = passes  # type: ignore[attr-defined]
    wrapped.__name__ = getattr(fn, "__name__", name)
    return wrapped
