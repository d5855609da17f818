"""Adapters to the outside world; the only modules that import I/O libraries."""
