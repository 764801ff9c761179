"""Jinja2 templates of notices and reports, shipped as package data."""
