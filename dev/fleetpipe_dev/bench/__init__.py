"""Benchmarks that start the local stack and write reports to benchmarks/reports/."""
