"""Model arguments (``backend:target,key=value,...``): read once, checked against what the
backend declares.

``parse_model`` splits the arguments and reads each value with ``literal`` (``true``/``false``
become booleans, numbers become int or float, anything else stays text); those values are
recorded with the model as given. Each backend class declares the arguments it takes as
``options: dict[str, Option]`` (type, default, help), and ``parse`` turns the given values into
the declared types, fills in the defaults and refuses, in one line naming the model, an unknown
key (with close matches suggested) or a value of the wrong type (``n_ctx=abc``).

Types: ``int`` (a whole number), ``float`` (a number; a whole number is accepted), ``bool``
(``true``/``false``, or 1/0) and ``str`` (any text, exactly as written). An empty value
(``rate=``) means the default for every type but ``str``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from assay.errors import ConfigError, UnknownOptionError


def literal(text: str) -> Any:
    """A value as written on the command line: a bool, an int, a float, or the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class Option:
    """One ``key=value`` argument a backend takes."""

    type: type  # int, float, bool or str
    default: Any = None  # None: not set (the backend decides)
    help: str = ""
    choices: tuple[str, ...] = ()  # the values a str option may take (none: any)
    min: float | None = None  # the least value of a number

    def describe(self) -> str:
        """What a value must be, as in "n_ctx must be <this>"."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        what = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[self.type]
        if self.min is not None:
            what += f" of at least {self.min:g}"
        return what

    def convert(self, name: str, value: Any, raw: str | None = None) -> Any:
        """``value`` (as ``literal`` read it, or as a caller passed it) in this option's type;
        ``raw`` is the text as written, kept for ``str`` options. Raises ValueError with the
        part of a message after the model's name."""
        if self.type is str:
            out: Any = raw if raw is not None else str(value)
        elif value == "" and isinstance(value, str):
            return self.default
        elif self.type is bool:
            if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
                out = bool(value)
            else:
                raise ValueError(self._wrong(name, value, raw))
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(self._wrong(name, value, raw))
            out = value
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(self._wrong(name, value, raw))
            out = float(value)
        else:  # pragma: no cover - a declaration mistake
            raise TypeError(f"option {name}: unsupported type {self.type!r}")
        if self.choices and out not in self.choices:
            raise ValueError(self._wrong(name, value, raw))
        if self.min is not None and out < self.min:
            raise ValueError(self._wrong(name, value, raw))
        return out

    def _wrong(self, name: str, value: Any, raw: str | None) -> str:
        shown = raw if raw is not None else (str(value).lower() if isinstance(value, bool) else value)
        return f"{name} must be {self.describe()}, not '{shown}'"


class _Spec(Protocol):  # registry.ModelSpec, without importing the registry
    text: str
    backend: str
    args: dict[str, Any]
    raw: dict[str, str]


def parse(spec: _Spec, declared: Mapping[str, Option], unsupported: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every declared option of ``spec``'s backend: the given ones converted, the others at
    their default. ``unsupported`` names arguments of the backend's family that this kind of
    model does not take, with why (e.g. "for an encoder-decoder model")."""
    unsupported = unsupported or {}
    check_names(spec, declared, also=unsupported)
    for name in spec.args:
        if name in unsupported and name not in declared:
            raise ConfigError(
                f"model '{spec.text}': {spec.backend} argument '{name}' is not supported {unsupported[name]} (known: {', '.join(sorted(declared))})"
            )
    out: dict[str, Any] = {}
    raw = getattr(spec, "raw", None) or {}
    for name, opt in declared.items():
        if name not in spec.args:
            out[name] = opt.default
            continue
        try:
            out[name] = opt.convert(name, spec.args[name], raw.get(name))
        except ValueError as exc:
            raise ConfigError(f"model '{spec.text}': {exc}") from None
    return out


def check_names(spec: _Spec, known: Iterable[str], also: Iterable[str] = ()) -> None:
    """An UnknownOptionError for the first argument of ``spec`` that is neither ``known``
    (the names suggested) nor in ``also``."""
    known = list(known)
    allowed = set(known) | set(also)
    for name in spec.args:
        if name not in allowed:
            raise UnknownOptionError(spec.text, spec.backend, name, known)


def check(model: str, name: str, value: Any, option: Option) -> Any:
    """One value checked and converted outside a model spec (``n_threads`` of a helper)."""
    try:
        return option.convert(name, value)
    except ValueError as exc:
        raise ConfigError(f"model '{model}': {exc}") from None
