"""Each fact an independent source shows about a real service, run against the simulator variant that reproduces it."""
