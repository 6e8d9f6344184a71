"""`sentinel-bridge demo`: the emulator with a few customer tenants, the bridge itself on
SQLite (run.py), simulated analysts (analysts.py) and a live per-tenant view (view.py).

Unlike the rest of this package, the demo imports the bridge: it runs it."""
