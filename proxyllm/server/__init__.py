"""The HTTP side: the FastAPI app, the hot-path ASGI endpoints, admin and health routes."""
