"""api app: models arrive with their issue."""
