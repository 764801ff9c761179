"""The campaign's machines, guards, checklist and definitions, as data (importable without a database)."""
