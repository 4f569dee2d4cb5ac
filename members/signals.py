"""Signals other apps listen to. Sent inside the merge/unmerge transaction, so a receiver's
writes (moving consent state, say) commit or roll back with the merge itself."""

from django.dispatch import Signal

# kwargs: event (MergeEvent)
member_merged = Signal()
# kwargs: event (MergeEvent, now undone)
member_unmerged = Signal()
