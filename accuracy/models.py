"""accuracy app: models arrive with their issue."""
