"""The run directory as a file store: atomic I/O, the lock, failure records."""
