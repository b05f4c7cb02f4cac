"""The one rule for the names of a bundle, wherever it is read (a folder, a .zip, ``check``, an
import): two names that differ only in case or Unicode form are refused, since a host on
case-insensitive storage would serve one of them for both, and so are backslashes and drive
letters, which unzip tools on Windows misread, and names that are not UTF-8. So every archive
the provider writes, it can read back.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Final

from ..errors import BundleError


def folded(name: str) -> str:
    """How names are compared: compatibility-normalized and case-folded."""
    if name.isascii():
        return name.lower()  # the same answer, without the normalization's cost
    return unicodedata.normalize("NFKC", name).casefold()


_DRIVE: Final = re.compile(r"[A-Za-z]:")


class Names:
    """The one rule for the names of a bundle, applied alike to a folder's files, a .zip's
    entries, ``check`` and an import, so that every archive the provider writes it can read
    back. Refused: two names that fold to the same (``folded``), since a host on
    case-insensitive storage would serve one file for both; and a name with a backslash or a
    leading drive letter, which unzip tools on Windows take for a folder or a drive."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: dict[str, str] = {}

    def claim(self, name: str) -> None:
        if "\\" in name or _DRIVE.match(name):
            raise BundleError(
                self.source,
                f"the name '{name}' has a backslash or begins with a drive letter, which unzip "
                "tools on Windows take for a folder or a drive; rename it",
            )
        key = folded(name)
        other = self.seen.get(key)
        if other is None:
            self.seen[key] = name
            return
        if other == name:
            raise BundleError(self.source, f"the entry '{name}' appears more than once")
        first, second = sorted((other, name))
        raise BundleError(
            self.source,
            f"'{first}' and '{second}' differ only in letter case or Unicode form, and a host "
            "that ignores case would serve one of them for both; rename or remove one of them",
        )


def utf8_name(rel: str, root: Path | str) -> str:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "backslashreplace").decode()
        raise BundleError(str(root), f"the name '{shown}' is not valid UTF-8") from None
    return rel
