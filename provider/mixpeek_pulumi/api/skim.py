"""Reading a JSON answer in bounded memory: the parts a step needs are kept as it streams in,
and the rest (every version's file list, in an app with a long history) is skipped unread.

Some answers grow with an app's whole history and the API offers nothing smaller (``GET
/v1/apps/{app_id}`` carries every version's ``asset_manifest``; the versions list has no
pages). Refusing them past a size would leave such an app stuck for good, and reading them
whole would make memory grow with the history. ``skim`` reads the body chunk by chunk and
keeps only what its ``Rule``s let through, so what it holds is bounded by what is kept.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

ANY: Final = "*"
"""In a rule's path: any key of an object, or any index of a list."""
MAX_DEPTH: Final = 64
COMPACT_AT: Final = 1 << 16

Path = tuple[str | int, ...]


class SkimError(ValueError):
    """The body is not JSON, or keeps more than the cap allows; the message says which."""


@dataclass(frozen=True)
class Rule:
    """What to do with the values at ``path`` (keys, or ``ANY``): with ``keep`` 0 and no
    ``wanted`` keys, the value is skipped and read as null; otherwise it is an object whose
    first ``keep`` members are kept, and the members named in ``wanted`` whatever their place."""

    path: tuple[str, ...]
    keep: int = 0
    wanted: frozenset[str] = frozenset()

    def matches(self, path: Path) -> bool:
        return len(path) == len(self.path) and all(
            want == ANY or want == str(got) for want, got in zip(self.path, path, strict=True)
        )

    @property
    def drops(self) -> bool:
        return self.keep == 0 and not self.wanted


@dataclass
class Skimmed:
    """The kept document, and for each object a rule thinned: how many members it had."""

    data: Any
    thinned: dict[Path, int] = field(default_factory=dict)


# A run of text the skipper never has to look inside: anything but quotes and brackets,
# whole strings, and whole objects that hold no object or list (a file's entry). Possessive
# quantifiers keep no backtracking state, so a failed match costs linear time and no memory.
_STRING = r'"(?:[^"\\]++|\\.)*+"'
_FLAT_OBJECT = r'\{(?:[^"{}\[\]]++|' + _STRING + r")*+\}"
_RUN: Final = re.compile(r'(?:[^"{}\[\]]++|' + _STRING + "|" + _FLAT_OBJECT + ")*+", re.S)
_PLAIN: Final = re.compile(r'[^"\\]*+')
_SPACE: Final = re.compile(r"[ \t\r\n]*")
_SCALAR: Final = re.compile(r"[^,}\]\s]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_LITERALS: Final = {
    "true": True,
    "false": False,
    "null": None,
    # Not JSON, but what json.loads reads (and Python services write) all the same.
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def skim(chunks: Iterable[bytes], rules: Iterable[Rule], *, cap: int) -> Skimmed:
    """The JSON document in ``chunks`` with what ``rules`` skip left out. Raises ``SkimError``
    when it is not JSON or what is kept passes ``cap`` characters."""
    parser = _Parser(_Reader(iter(chunks)), tuple(rules), cap)
    try:
        data = parser.value((), 0)
        parser.reader.space()
        if parser.reader.peek() != "":
            raise SkimError("there is more after the JSON document")
    except UnicodeDecodeError:
        raise SkimError("the body is not UTF-8 text") from None
    return Skimmed(data, parser.thinned)


class _Reader:
    """Text pulled from the chunks as the parser needs it; what was read is let go."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder: codecs.IncrementalDecoder | None = None
        self._head = b""
        self.buf = ""
        self.pos = 0
        self.ended = False

    def _decode(self, chunk: bytes | None) -> str:
        """Text from bytes in the body's own encoding, found from its first bytes as
        ``json.loads`` finds it (UTF-8, with or without a BOM, or UTF-16/32)."""
        if self._decoder is None:
            self._head += chunk or b""
            if len(self._head) < 4 and chunk is not None:
                return ""
            found = json.detect_encoding(self._head)
            self._decoder = codecs.getincrementaldecoder(found)("strict")
            chunk, self._head = self._head, b""
        return self._decoder.decode(chunk or b"", final=chunk is None)

    def more(self) -> bool:
        """Read another chunk onto the buffer; False once the body has ended."""
        if self.pos >= COMPACT_AT:
            self.buf, self.pos = self.buf[self.pos :], 0
        while not self.ended:
            chunk = next(self._chunks, None)
            text = self._decode(chunk)
            if chunk is None and self._decoder is not None:
                text += self._decoder.decode(b"", final=True)
            self.ended = chunk is None
            if text:
                self.buf += text
                return True
        return False

    def peek(self) -> str:
        while self.pos >= len(self.buf):
            if not self.more():
                return ""
        return self.buf[self.pos]

    def space(self) -> None:
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return

    def expect(self, char: str) -> None:
        self.space()
        if self.peek() != char:
            raise SkimError(f"expected {char!r} at character {self.pos}")
        self.pos += 1

    def string(self, room: int) -> str:
        """The string starting at the current quote, whole (a kept string of at most
        ``room`` characters)."""
        scanned = 1  # how far past the opening quote is known not to end it
        while True:
            at = _PLAIN.match(self.buf, self.pos + scanned).end()  # type: ignore[union-attr]
            if at < len(self.buf) and self.buf[at] == '"':
                text, self.pos = json.decoder.scanstring(self.buf, self.pos + 1)  # type: ignore[attr-defined]
                return str(text)
            if at + 1 < len(self.buf):  # a backslash and the character it escapes
                scanned = at + 2 - self.pos
                continue
            scanned = at - self.pos  # a chunk's end: scan on from here, never from the start
            if scanned > room:
                raise SkimError("what is kept of it is larger than the cap")
            if not self.more():
                raise SkimError("a string never ends")

    def scalar(self) -> str:
        while True:
            end = _SCALAR.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if end < len(self.buf) or not self.more():
                token, self.pos = self.buf[self.pos : end], end
                return token

    # ---------------------------------------------------------------------- skipping

    def skip_value(self) -> None:
        self.space()
        first = self.peek()
        if first == '"':
            self.skip_string()
        elif first in "{[":
            self.skip_nested()
        else:
            self.scalar()

    def skip_string(self) -> None:
        """Past the string at the current quote, without holding it whole."""
        self.pos += 1
        while True:
            self.pos = _PLAIN.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= len(self.buf):
                self._let_go()
                if not self.more():
                    raise SkimError("a string never ends")
                continue
            if self.buf[self.pos] == '"':
                self.pos += 1
                return
            if self.pos + 1 >= len(self.buf) and not self.more():  # a backslash: its pair
                raise SkimError("a string never ends")
            self.pos += 2

    def skip_nested(self) -> None:
        """Past the object or list at the current bracket: runs of text, whole strings and
        flat objects go by in one match each, so a long file list costs few steps."""
        depth, self.pos = 1, self.pos + 1  # inside it, a run can never pass its end
        while True:
            self.pos = _RUN.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= len(self.buf):
                self._let_go()
                if not self.more():
                    raise SkimError("an object or list never ends")
                continue
            char = self.buf[self.pos]
            if char == '"':
                # A string cut by the chunk's end: skipped as it streams, never read again.
                self.skip_string()
                continue
            if char in "{[":  # a flat object cut by the chunk's end is walked like any other
                depth += 1
            else:
                depth -= 1
            self.pos += 1
            if depth == 0:
                return

    def _let_go(self) -> None:
        self.buf, self.pos = self.buf[self.pos :], 0


class _Parser:
    def __init__(self, reader: _Reader, rules: tuple[Rule, ...], cap: int) -> None:
        self.reader = reader
        self.rules = rules
        self.room = cap
        self.thinned: dict[Path, int] = {}

    def _rule(self, path: Path) -> Rule | None:
        return next((r for r in self.rules if r.matches(path)), None)

    def _spend(self, size: int) -> None:
        self.room -= size
        if self.room < 0:
            raise SkimError("what is kept of it is larger than the cap")

    def value(self, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SkimError(f"it nests deeper than {MAX_DEPTH} levels")
        reader = self.reader
        reader.space()
        first = reader.peek()
        if first == "{":
            return self._object(path, depth)
        if first == "[":
            return self._list(path, depth)
        if first == '"':
            text = reader.string(self.room)
            self._spend(len(text))
            return text
        token = reader.scalar()
        self._spend(len(token))
        if token in _LITERALS:
            return _LITERALS[token]
        if not _NUMBER.match(token):
            raise SkimError(
                f"{token[:20]!r} is not a JSON value" if token else "a value is missing"
            )
        return int(token) if token.lstrip("-").isdigit() else float(token)

    def _object(self, path: Path, depth: int) -> dict[str, Any]:
        reader, found = self.reader, dict[str, Any]()
        thin = self._rule(path)
        members = 0
        reader.expect("{")
        reader.space()
        if reader.peek() == "}":
            reader.pos += 1
            return found
        while True:
            reader.space()
            if reader.peek() != '"':
                raise SkimError(f"an object key is missing at character {reader.pos}")
            key = reader.string(self.room)
            reader.expect(":")
            members += 1
            child = (*path, key)
            rule = self._rule(child)
            if thin is not None and members > thin.keep and key not in thin.wanted:
                reader.skip_value()
            elif rule is not None and rule.drops:
                reader.skip_value()
                found[key] = None
            else:
                self._spend(len(key))
                found[key] = self.value(child, depth + 1)
            reader.space()
            end = reader.peek()
            reader.pos += 1
            if end == "}":
                break
            if end != ",":
                raise SkimError(f"expected ',' or '}}' at character {reader.pos - 1}")
        if thin is not None and members > thin.keep:
            self.thinned[path] = members
        return found

    def _list(self, path: Path, depth: int) -> list[Any]:
        reader, found = self.reader, list[Any]()
        reader.expect("[")
        reader.space()
        if reader.peek() == "]":
            reader.pos += 1
            return found
        while True:
            child = (*path, len(found))
            rule = self._rule(child)
            if rule is not None and rule.drops:
                reader.skip_value()
                found.append(None)
            else:
                found.append(self.value(child, depth + 1))
            reader.space()
            end = reader.peek()
            reader.pos += 1
            if end == "]":
                return found
            if end != ",":
                raise SkimError(f"expected ',' or ']' at character {reader.pos - 1}")
