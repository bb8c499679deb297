"""Configuration below everything else: value checks, the registry mechanism, run identity, method presets."""
