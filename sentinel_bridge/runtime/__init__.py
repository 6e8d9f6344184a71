"""Composition and the running daemon: adapters built from settings, loops, signals."""
