"""The prover: the z3 encoding of the model and the inductive proofs over it."""
