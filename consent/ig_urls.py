"""The IG console: audit and consent review for information governance officers."""

app_name = "ig"
urlpatterns: list = []
