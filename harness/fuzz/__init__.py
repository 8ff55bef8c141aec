"""The fuzzer: oracle, campaigns, findings, conformance, and the targets it tests."""
