"""Simulators of the provider APIs, for tests and for trying the integration by hand.

Each module serves one provider's HTTP API on 127.0.0.1 (see `goe`); run one on its
own with `python -m tests.simulators <provider>`.
"""
