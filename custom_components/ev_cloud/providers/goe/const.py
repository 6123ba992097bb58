"""go-e: the provider's name and its entry data keys."""

from typing import Final

NAME: Final = "goe"
CONF_CONNECTION: Final = "connection"
CONF_SERIAL: Final = "serial"
CONNECTION_CLOUD: Final = "cloud"
CONNECTION_LOCAL: Final = "local"
