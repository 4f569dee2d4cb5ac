"""Consent files: the brand's consent events as a daily signed file set, for receivers that
cannot take webhooks (issue 26 item 5; docs/api.md "Consent files").

- ``rows``: what one file says (the ledger read in keyset pages, each event with the
  person's memberships at the brand's stores only: ⚑ brand wall) and how it is written
  (CSV through ``cdp.csvutil``, JSON Lines, HMAC-SHA256 signatures, the manifest).
- ``services``: create a feed, write its next file set (the cursor moves in the
  transaction that records the file), delete expired files, forget an erased person.
"""
