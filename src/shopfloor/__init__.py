"""Shopfloor: a governed pipeline of AI coding agents over Markdown task files."""

__version__ = "0.1.0"
