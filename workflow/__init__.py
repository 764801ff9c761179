"""The anjian engine: settings, database, services, scheduler and command line."""
