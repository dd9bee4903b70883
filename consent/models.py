"""consent app: models arrive with their issue."""
