"""Developer tooling: code generation and contract checks. Not imported by the services."""
