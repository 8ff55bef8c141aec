"""The documentation site: graphs, diagrams and pages computed by the engines."""
