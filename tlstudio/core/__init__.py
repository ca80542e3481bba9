"""The headless engine. Nothing in this package may import Qt (see tests/core/test_layering.py)."""
