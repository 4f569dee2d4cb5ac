"""The files an export lets out (issue 25, "files that the next system accepts").

- The **gateway file** is for the channel's sending system, not for a spreadsheet: SMS
  and phone exports list mobile numbers as E.164 (``+8613800138000``) or, for Chinese
  numbers, the 11 digits mainland gateways take (``13800138000``), with nothing
  prepended; e-mail exports list the address with the person's one-click unsubscribe link
  and the ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` values (RFC 2369, RFC 8058) the
  sending system puts on each mail; other channels the id the channel knows (the WeChat
  unionid, the app's user id). UTF-8 without a byte-order mark, no formula guard: every
  value is a normalised contact point or a URL we made, and a guard (``'+86…``) is exactly
  what gateways reject. Only campaign sends have one: a file for review never goes to a
  gateway.
- The **sheet** (``segments.queries.export_rows``) is for people: names, city, language,
  stage, Excel-safe (``cdp.csvutil``).
"""

from __future__ import annotations

from collections.abc import Iterator

from consent.models import Channel
from consent.optin import unsubscribe_url_for

from .models import Segment, SegmentExport
from .queries import EXPORT_CHUNK, exported_members, with_contact

PHONE_FORMATS = ("e164", "national")
PHONE_CHANNELS = (Channel.SMS, Channel.PHONE)
CN_PREFIX = "+86"


def gateway_header(channel: str) -> list[str]:
    if channel in PHONE_CHANNELS:
        return ["mobile"]
    if channel == Channel.EMAIL:
        return ["email", "unsubscribe_url", "list_unsubscribe", "list_unsubscribe_post"]
    return ["member_id", "contact"]


def phone_for_gateway(phone: str, phone_format: str) -> str:
    """E.164 as stored, or for ``national`` the 11 digits of a Chinese mobile number
    (other countries keep E.164: a gateway cannot guess their country)."""
    if phone_format == "national" and phone.startswith(CN_PREFIX):
        return phone[len(CN_PREFIX) :]
    return phone


def gateway_rows(export: SegmentExport, segment: Segment, *, phone_format: str = "e164") -> Iterator[list[str]]:
    channel = segment.channel
    members = with_contact(exported_members(export).order_by("pk"), channel).values_list("pk", "contact")
    for pk, contact in members.iterator(chunk_size=EXPORT_CHUNK):
        if not contact:
            continue  # reachability was checked at export; erased since
        if channel in PHONE_CHANNELS:
            yield [phone_for_gateway(contact, phone_format)]
        elif channel == Channel.EMAIL:
            link = unsubscribe_url_for(pk, segment.brand_id, segment.purpose_id, channel)
            yield [contact, link, f"<{link}>", "List-Unsubscribe=One-Click"]
        else:
            yield [str(pk), contact]
