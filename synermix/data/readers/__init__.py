"""One reader per data set: its on-disk layout read into a Source, and its registry entry (synermix.data.registry)."""
