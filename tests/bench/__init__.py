"""The benchmark: requests, freshness and cost of every provider (scripts/bench)."""
