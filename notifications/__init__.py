"""Rendering and delivering notices (reminders and overdue notices)."""
