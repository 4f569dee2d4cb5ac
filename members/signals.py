"""Signals other apps listen to. Sent inside the merge/unmerge transaction, so a receiver's
writes (moving consent state, say) commit or roll back with the merge itself."""

from django.dispatch import Signal

# kwargs: event (MergeEvent)
member_merged = Signal()
# kwargs: event (MergeEvent, now undone)
member_unmerged = Signal()
# kwargs: member_id (int), brand_ids (list of int: brands the person was a member of).
# Sent inside the erasure transaction by whoever erases a member (data-subject requests).
member_erased = Signal()
