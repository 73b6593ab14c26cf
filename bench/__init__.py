"""Benchmarks of the Conductor against the real stack (see bench/README.md)."""
