"""HTTP layer: thin routes, dependencies and the error envelope."""
