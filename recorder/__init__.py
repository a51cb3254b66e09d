"""Runs and traces a build and writes its tape; owns the tape format."""

__version__ = "0.1.0"
