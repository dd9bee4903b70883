"""Share links: a patient shows their record to a clinician outside the network."""

app_name = "share"
urlpatterns: list = []
