"""The local stack: real servers on loopback for tests, benchmarks and the demo."""
