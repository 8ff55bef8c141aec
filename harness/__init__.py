"""synack.harness: the engines and the outside world (CLI, explorer, prover, fuzzer)."""
