"""Domain services: the only code that changes models. Handlers, the CLI and jobs call these."""
