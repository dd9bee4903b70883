"""Who can see my record, my sharing choices, who has looked."""

app_name = "sharing"
urlpatterns: list = []
