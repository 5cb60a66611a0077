"""Hostile-input helpers for the web doors (HTTP bodies, WebSocket frames).

Pure helpers on Django and Channels: nothing here imports from the project's apps, so every
layer may use them (the bottom layer of the import-linter contract in pyproject.toml).
"""
