"""The studio's REST service: FastAPI app, settings, database, routes and services."""
