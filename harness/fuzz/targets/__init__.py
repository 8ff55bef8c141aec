"""Targets: what the fuzzer tests (base.py is the interface, registry.py the names)."""
