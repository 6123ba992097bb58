"""OVMS: the provider's name and its option keys."""

from typing import Final

NAME: Final = "ovms"
# Options: vehicles whose live updates the user switched on
CONF_LIVE_VEHICLES: Final = "live_vehicles"
# Entry data: each vehicle's v2 secrets, {vehicle id: {server_password, pin}};
# a vehicle without them is read-only.
CONF_VEHICLE_COMMANDS: Final = "vehicle_commands"
CONF_SERVER_PASSWORD: Final = "server_password"
CONF_PIN: Final = "pin"
# Entry data: where the server's v2 protocol listens, {host, port, tls}; when
# absent, derived from the server URL.
CONF_V2_SERVER: Final = "v2_server"
# Options form: the vehicle whose commands the next step sets up; that step's
# advanced fields (host:port, TLS).
CONF_COMMANDS_VEHICLE: Final = "commands_vehicle"
CONF_V2_ADDRESS: Final = "v2_address"
CONF_V2_TLS: Final = "v2_tls"
