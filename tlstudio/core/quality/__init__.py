"""Checks of a folder before training: suspected wrong labels, near-duplicates, leakage, outliers (``quality.check``)."""
