"""A flow form as the browser gets it: the values its fields are filled in with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.data_entry_flow import section


def suggested(result: Mapping[str, Any]) -> dict[str, Any]:
    """The suggested values of a form's fields, a section's as a nested dict."""
    values: dict[str, Any] = {}
    for key, value in result["data_schema"].schema.items():
        if isinstance(value, section):
            values[str(key)] = suggested({"data_schema": value.schema})
        elif key.description and "suggested_value" in key.description:
            values[str(key)] = key.description["suggested_value"]
    return values
