"""OVMS tests."""
