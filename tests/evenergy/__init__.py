"""ev.energy tests."""
