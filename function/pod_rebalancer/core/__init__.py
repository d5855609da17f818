"""The functional core: statistics, guards and planning. Pure: no I/O, no environment, no clock."""
