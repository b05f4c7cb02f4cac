"""`make demo`: deploy the demo project against the local emulator (completed in Part 6)."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "make demo: the demo program arrives with the resources (Part 6); run `make test` meanwhile."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
