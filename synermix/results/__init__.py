"""Results across runs: the report, paired statistics, the beta protocol and search, the figures."""
