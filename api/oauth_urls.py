"""OAuth 2.0, SMART configuration and the patient's connected apps."""

app_name = "oauth"
urlpatterns: list = []
