"""Command-line entry points shared by scripts/: the Hydra app wrapper, the pre-flight check, sweep tallies."""
