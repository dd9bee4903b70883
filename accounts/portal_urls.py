"""Linking an account to a record, and the inbox."""

app_name = "portal"
urlpatterns: list = []
