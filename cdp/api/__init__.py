"""The REST API's shared parts: API-key authentication, scopes, per-key throttling,
RFC 9457 problem details, request size limits and the base view every endpoint uses.

Each app keeps its own endpoints in its ``api.py``; ``cdp/urls.py`` mounts them under
``/api/v1/``.
"""
