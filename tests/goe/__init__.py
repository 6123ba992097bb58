"""go-e tests."""
