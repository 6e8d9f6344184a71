"""Benchmarks of sentinel-bridge against the emulator over loopback (`python -m bench all`).

They print a table of measured figures next to their targets; they are never part of the test
run. See BENCHMARKS.md for the latest figures and the machine they came from.
"""
