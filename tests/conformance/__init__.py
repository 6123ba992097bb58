"""Facts independent sources show about the real services, one case each.

Each case runs our client against the simulator variant that reproduces it.
"""
