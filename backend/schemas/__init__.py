"""Public (wire) shapes, one module per resource: `FileObject`, `FileList`, … plus the shared envelopes.

Kept apart from `db/` (ORM rows) and `api/` (routes) so services and routes can both use them.
"""
