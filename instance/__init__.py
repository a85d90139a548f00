"""Shoal instance core: settings, models, storage, jobs, auth, services, REST API, app factory and CLI."""

__version__ = "0.1.0"
