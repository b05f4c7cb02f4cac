"""Mixpeek emulator."""
