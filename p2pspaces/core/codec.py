"""Field specifications and the strict msgpack codec behind :mod:`p2pspaces.core.wire`.

A message is a frozen dataclass whose fields each carry a :class:`Spec` in their metadata.  The
spec bounds the value (byte lengths, character counts, integer ranges, list lengths) and converts
between the Python value and what msgpack carries.  On the wire a message is a msgpack map
``{"v": version, "t": type, <fields>}``; decoding rejects anything else with a :class:`WireError`,
and no msgpack or Python exception escapes (the websockets rule: it parses, or it raises the
documented error).
"""

from __future__ import annotations

import dataclasses
import enum
import unicodedata
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import msgpack

from p2pspaces.core.errors import WireError

PROTOCOL_VERSION = 6
"""2: browser guests (a member's gateway in the state, an error's addressee).  3: proofs of
authority (an update's resulting hash, a snapshot's custody, a claim's basis).  5: ``heard``
(members tell speakers how loud they play them).  6: relays (a member's ``via``, the
action that sets it, an opt-out in the join)."""
MAX_FRAME = 4 * 1024 * 1024
"""Hard cap on one encoded message, checked before any decoding (a snapshot of a very large
room is the biggest thing we send; 4 MiB holds about 60,000 listeners)."""
MAX_LIST = 100_000
MAX_MAP = 32

# Characters that must never reach a terminal or a log from a peer: C0/C1 controls (escape
# sequences) and the bidirectional overrides of the "Trojan Source" attack (CVE-2021-42574).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Invalid(Exception):
    """A value does not meet its spec (internal; surfaced as WireError or ValueError)."""


class Spec:
    """How one field is bounded and carried."""

    def parse(self, value: object) -> Any:
        """Check a decoded msgpack value and return the Python value, or raise Invalid."""
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        """Return what msgpack should carry for a (valid) Python value."""
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Bytes(Spec):
    """A byte string of bounded length."""

    min: int
    max: int

    def parse(self, value: object) -> bytes:
        if type(value) is not bytes:
            raise Invalid("expected bytes")
        if not self.min <= len(value) <= self.max:
            raise Invalid(f"length {len(value)} not in {self.min}..{self.max}")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Text(Spec):
    """Printable text, at most ``max_chars`` characters; no control characters but ``controls``."""

    max_chars: int
    min_chars: int = 0
    controls: str = ""

    def dump(self, value: Any) -> Any:
        """A ``str`` subclass (an enum's member, as an error code) goes out as plain text."""
        return str.__str__(value) if isinstance(value, str) else value

    def parse(self, value: object) -> str:
        if type(value) is not str:
            raise Invalid("expected text")
        if not self.min_chars <= len(value) <= self.max_chars:
            raise Invalid(f"{len(value)} characters, not in {self.min_chars}..{self.max_chars}")
        for char in value:
            if char in _BIDI or (unicodedata.category(char) == "Cc" and char not in self.controls):
                raise Invalid(f"control character U+{ord(char):04X} in text")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Int(Spec):
    """An integer in ``lo..hi`` (booleans are not integers here)."""

    lo: int
    hi: int

    def parse(self, value: object) -> int:
        if type(value) is not int:
            raise Invalid("expected an integer")
        if not self.lo <= value <= self.hi:
            raise Invalid(f"{value} not in {self.lo}..{self.hi}")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Bool(Spec):
    """True or false."""

    def parse(self, value: object) -> bool:
        if type(value) is not bool:
            raise Invalid("expected a boolean")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Choice(Spec):
    """One value of a string enum."""

    kind: type[enum.StrEnum]

    def parse(self, value: object) -> enum.StrEnum:
        if type(value) is not str:
            raise Invalid("expected a name")
        try:
            return self.kind(value)
        except ValueError:
            raise Invalid(f"unknown {self.kind.__name__} {value[:40]!r}") from None

    def dump(self, value: Any) -> Any:
        return str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Optional(Spec):
    """A value or nil."""

    inner: Spec

    def parse(self, value: object) -> Any:
        return None if value is None else self.inner.parse(value)

    def dump(self, value: Any) -> Any:
        return None if value is None else self.inner.dump(value)


@dataclasses.dataclass(frozen=True, slots=True)
class ListOf(Spec):
    """A list of at most ``max`` items, held as a tuple."""

    item: Spec
    max: int

    def parse(self, value: object) -> tuple[Any, ...]:
        if type(value) is not list:
            raise Invalid("expected a list")
        if len(value) > self.max:
            raise Invalid(f"{len(value)} items, more than {self.max}")
        return tuple(self.item.parse(item) for item in value)

    def dump(self, value: Any) -> Any:
        return [self.item.dump(item) for item in value]


@dataclasses.dataclass(frozen=True, slots=True)
class Nested(Spec):
    """A record (a dataclass of specced fields) carried as a map without version or type."""

    kind: type[Record]

    def parse(self, value: object) -> Record:
        if type(value) is not dict:
            raise Invalid("expected a map")
        return build(self.kind, value)

    def dump(self, value: Any) -> Any:
        return fields_to_map(value)


def spec(kind: Spec, **kwargs: Any) -> Any:
    """Declare a dataclass field bounded by ``kind``."""
    return dataclasses.field(metadata={"spec": kind}, **kwargs)


class Record:
    """Base of every dataclass carried on the wire; validates itself when built by a caller."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[tuple[str, Spec], ...]] = ()
    NAMES: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for name, kind in self.FIELDS:
            value = getattr(self, name)
            try:
                parsed = kind.parse(kind.dump(value))
            except Invalid as exc:
                raise ValueError(f"{type(self).__name__}.{name}: {exc}") from None
            object.__setattr__(self, name, parsed)


R = TypeVar("R", bound=Record)
T = TypeVar("T")


def record(cls: type[R]) -> type[R]:
    """Class decorator: collect the field specs of a frozen, slotted record dataclass."""
    cls.FIELDS = tuple((f.name, f.metadata["spec"]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    cls.NAMES = frozenset(name for name, _ in cls.FIELDS)
    return cls


def fields_to_map(value: Record) -> dict[str, Any]:
    """Return the msgpack-ready map of a record's fields."""
    return {name: kind.dump(getattr(value, name)) for name, kind in value.FIELDS}


def build(cls: type[R], data: dict[Any, Any], skip: frozenset[str] = frozenset()) -> R:
    """Build a record from a decoded map, refusing unknown and missing fields."""
    names = cls.NAMES
    keys = data.keys() - skip if skip else data.keys()
    if keys != names:
        unknown = sorted(str(k)[:40] for k in keys - names)
        missing = sorted(names - keys)
        raise Invalid(f"{cls.__name__}: unknown fields {unknown}, missing fields {missing}")
    # Bypass __post_init__: every field is parsed here, so validating again would double the
    # cost of decoding.
    obj = object.__new__(cls)
    for name, kind in cls.FIELDS:
        try:
            object.__setattr__(obj, name, kind.parse(data[name]))
        except Invalid as exc:
            raise Invalid(f"{cls.__name__}.{name}: {exc}") from None
    return obj


def unpack(data: bytes, max_size: int = MAX_FRAME) -> Any:
    """Decode msgpack bytes with hard limits, raising only :class:`WireError`."""
    if type(data) is not bytes:
        raise WireError("frame is not bytes")
    if len(data) > max_size:
        raise WireError(f"frame of {len(data)} bytes exceeds the {max_size}-byte cap")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=MAX_LIST,
            max_map_len=MAX_MAP,
            max_ext_len=0,
        )
    # msgpack raises a zoo of types (ExtraData, FormatError, StackError, ValueError,
    # UnicodeDecodeError, TypeError...): translate every one at this edge.
    except Exception as exc:
        raise WireError(f"malformed msgpack: {type(exc).__name__}") from None


def pack(value: Any) -> bytes:
    """Encode with msgpack (our own values only)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def guarded(func: Callable[..., T]) -> Callable[..., T]:
    """Turn :class:`Invalid` raised while decoding into :class:`WireError`."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except Invalid as exc:
            raise WireError(str(exc)) from None

    wrapper.__doc__ = func.__doc__
    wrapper.__name__ = func.__name__
    return wrapper
