"""EV-Monitor tests."""
