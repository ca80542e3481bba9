"""Fault tests: each finding of the fault audit (full and read-only volumes, odd names, untrusted model
files, weights imports, warnings that training must show), reproduced and answered with a clear message."""
