"""The HTTP service: `trailseal serve`."""

from trailseal.server.app import create_app
from trailseal.server.service import Limits

__all__ = ["Limits", "create_app"]
