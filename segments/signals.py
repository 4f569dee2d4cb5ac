"""Signals other parts listen to (webhooks, dashboards). Sent after the build committed."""

from django.dispatch import Signal

# kwargs: build (a succeeded SegmentBuild)
segment_built = Signal()
