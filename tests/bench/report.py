"""Print the benchmark's results as a Markdown table (what the README shows).

python -m tests.bench.report [.bench/results.json]
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any

NONE = "n/a"
NAMES = {
    "goe": "go-e (cloud)",
    "ovms": "OVMS",
    "evenergy": "ev.energy",
    "evlinkha": "EVLinkHA (free)",
    "evmonitor": "EV-Monitor (sink)",
}
COLUMNS = (
    "Provider",
    "Devices",
    "Requests/h per device",
    "Use of the service's limit",
    "HTTP 429",
    "Failed reads (put off)",
    "Reads with new data",
    "Data age while charging (median / worst)",
    "Data shown (story / charging)",
    "CPU per update (median)",
    "Setup",
    "Peak memory",
)


def duration(seconds: float | None) -> str:
    """Seconds, minutes or hours, as fits."""
    if seconds is None:
        return NONE
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.3g} h"


def share(value: float | None) -> str:
    """A share as a percentage."""
    return NONE if value is None else f"{value * 100:.0f} %"


def row(result: dict[str, Any]) -> list[str]:
    """One result as the table's cells."""
    cpu = result["cpu_per_update_median_ms"]
    memory = result["peak_memory_kib"]
    setup = f"{result['setup_wall_s'] * 1000:.0f} ms"
    if result["devices_at_setup"] < result["devices"]:
        setup += f" ({result['devices_at_setup']} of {result['devices']} read"
        after = result.get("all_devices_after_s")
        setup += ")" if after is None else f", all after {duration(after)})"
    failed = str(result["failed_updates"])
    if result.get("postponed_updates"):
        failed += f" ({result['postponed_updates']})"
    return [
        NAMES.get(result["provider"], result["provider"]),
        str(result["devices"]),
        f"{result['requests_per_hour_per_device']:g}",
        result["quota"]["text"],
        str(result["http_429"]),
        failed,
        share(result["new_data_share"]),
        f"{duration(result['charging_age_median_s'])} / "
        f"{duration(result['charging_age_max_s'])}",
        f"{share(result['shown_share'])} / {share(result['charging_shown_share'])}",
        NONE if cpu is None else f"{cpu:.2f} ms",
        setup,
        NONE if memory is None else f"{memory / 1024:.1f} MiB",
    ]


def table(data: dict[str, Any]) -> str:
    """The Markdown table of a results file's contents."""
    story = ", ".join(
        f"{part['phase']} {duration(part['hours'] * 3600)}" for part in data["story"]
    )
    lines = [
        f"{data['form'].capitalize()} form: {duration(data['hours'] * 3600)} "
        f"simulated ({story}); Home Assistant {data.get('home_assistant')}, "
        f"Python {data.get('python')}, {data.get('machine')}, {data.get('date')}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row(result)) + " |" for result in data["results"]]
    return "\n".join(lines)


LINK_COLUMNS = (
    "Vehicle",
    "Charger link",
    "Requests per vehicle per day",
    "Saving",
    "Use of the service's limit",
    "Estimate's worst error (after the car's first reading at the charger)",
)


def points(value: float | None) -> str:
    """Points of state of charge."""
    return NONE if value is None else f"{value:g} points"


def link_rows(links: list[dict[str, Any]]) -> list[list[str]]:
    """The car-and-charger runs as the table's cells, unlinked first."""
    unlinked = {
        link["provider"]: link["requests_per_day"]
        for link in links
        if not link["linked"]
    }
    rows = []
    for link in links:
        saving = NONE
        base = unlinked.get(link["provider"])
        if link["linked"] and base:
            change = (link["requests_per_day"] - base) / base * 100
            saving = f"{-change:.0f} % fewer" if change < 0 else f"{change:.0f} % more"
        error = NONE
        if link["linked"]:
            error = (
                f"{points(link['worst_estimate_error'])} "
                f"({points(link['worst_estimate_error_after_read'])})"
            )
        rows.append(
            [
                NAMES.get(link["provider"], link["provider"]),
                "go-e" if link["linked"] else "none",
                f"{link['requests_per_day']:g}",
                saving,
                link["quota_text"],
                error,
            ]
        )
    return rows


def link_table(data: dict[str, Any]) -> str:
    """The Markdown table of the car-and-charger runs (empty if none)."""
    if not data.get("links"):
        return ""
    charge = duration(data["link_charge_hours"] * 3600)
    story = ", ".join(
        f"plugged in {duration(part['hours'] * 3600)} (charging the first {charge})"
        if part["phase"] == "charging"
        else f"{part['phase']} {duration(part['hours'] * 3600)}"
        for part in data["link_story"]
    )
    lines = [
        f"A car charged at home by a go-e charger: {story}.",
        "",
        "| " + " | ".join(LINK_COLUMNS) + " |",
        "|" + "---|" * len(LINK_COLUMNS),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in link_rows(data["links"])]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the tables of the results file named (or the default one)."""
    path = Path(argv[0] if argv else ".bench/results.json")
    data = json.loads(path.read_text())
    print(table(data))
    if links := link_table(data):
        print()
        print(links)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
