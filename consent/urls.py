"""Consumer-facing consent links (privacy center pages join them in a later issue)."""

app_name = "consent"

urlpatterns: list = []
