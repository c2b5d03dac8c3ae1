"""Domain operations on the database and storage; keyword-only functions called by thin routes."""
