"""A trained run read back: evaluate, predict, their plots."""
