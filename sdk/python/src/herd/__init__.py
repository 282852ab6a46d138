"""herd: Python client for herd."""
