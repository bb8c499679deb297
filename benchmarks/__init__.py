"""Performance benchmarks (make bench), kept out of the synermix package."""
