"""The patient's own record pages."""

app_name = "record"
urlpatterns: list = []
