"""The model checker: explore the state graph, check properties, show counterexamples."""
