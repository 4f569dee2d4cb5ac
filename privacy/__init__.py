"""The privacy center: consumers sign in (django-allauth), claim the profile stores hold
about them, and view, change, withdraw, download or delete it (issue 6)."""
