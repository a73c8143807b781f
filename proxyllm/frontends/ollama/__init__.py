"""Ollama's own API (``/api/*``) in front of every model; see ``frontend.py`` and ``routes.py``."""
