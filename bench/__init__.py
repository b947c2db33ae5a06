"""The benchmark and load test (run on demand; see bench/README.md)."""
