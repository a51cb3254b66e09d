"""Jinja2 templates and their rendering: build report, diff report, flame page."""
