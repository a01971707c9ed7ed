"""The fleet simulator, the load driver and the benchmark harness."""
