"""The stack fixture, shared with the protocol tests."""

from tests.protocol.conftest import stack

__all__ = ["stack"]
