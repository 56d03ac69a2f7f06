"""The daemon: wiring and signals, and the two-daemon launcher of the demo and the tests."""
