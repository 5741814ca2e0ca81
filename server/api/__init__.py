"""The HTTP API: the FastAPI app, its dependencies, errors, pagination and metrics."""
