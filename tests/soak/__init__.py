"""The soak: many devices of every provider over simulated hours, with faults."""
