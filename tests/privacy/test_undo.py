"""Undo of a withdrawal in the privacy center: for ``PRIVACY_UNDO_SECONDS`` after turning a
switch off (or withdrawing everything) the person can take it back. The undo is a new
grant per choice restoring what stood before, naming the withdrawals it undoes; refused,
recording nothing, when the offer is forged, out of time, someone else's, already used,
or the choice changed again since."""

from __future__ import annotations

import html
import re
import threading
import time

import pytest
from django.core import mail, signing
from django.db import connection

from cdp.models import OutboxMessage
from consent import choices, services
from consent.models import Action, ConsentEvent, ConsentState, Notice, SourceType

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

UNDO_FORM = '<form method="post" action="/privacy/consents/undo/" data-undo>'
UNDO_BUTTON = '<button type="submit" class="button secondary">Undo</button>'


def sms_state(member, purposes):
    return ConsentState.objects.get(member_id=member.pk, purpose=purposes["marketing"], channel="sms")


def switch_off(client, purpose, channel="sms", **extra):
    return client.post("/privacy/consents/set/", {"purpose": purpose.pk, "channel": channel, "value": "off"}, **extra)


def offered_token(page: str) -> str:
    form = page[page.index(UNDO_FORM) :].split("</form>")[0]
    return html.unescape(re.search(r'name="token" value="([^"]+)"', form).group(1))


def webhook_rows_for(event):
    return [m for m in OutboxMessage.objects.filter(task="webhooks.tasks.publish_event") if m.args[1:2] == [event.pk]]


def test_withdraw_then_undo_turns_it_on_again_with_the_same_notice(
    signed_in_english, shopper, brand, purposes, subscriber
):
    grant = sms_state(shopper, purposes).event
    # A newer notice since the store's grant: the undo restores the grant's, not the newest.
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purposes["marketing"], locale="zh-hans",
        title="营销告知", body="v2",
    )  # fmt: skip

    page = switch_off(signed_in_english, purposes["marketing"], follow=True).content.decode()

    message = page.split('<ul class="messages">')[1].split("</li>")[0]
    assert "Turned off: 营销信息 · SMS" in message
    assert message.index("Turned off") < message.index(UNDO_FORM)  # in the same message, after the text
    assert UNDO_BUTTON in message and 'name="next"' in message and "csrfmiddlewaretoken" in message
    withdrawal = sms_state(shopper, purposes).event
    assert withdrawal.action == Action.WITHDRAWN

    response = signed_in_english.post(
        "/privacy/consents/undo/", {"token": offered_token(page), "next": "/privacy/consents/"}
    )

    assert response.status_code == 302 and response["Location"] == "/privacy/consents/"
    state = sms_state(shopper, purposes)
    assert state.action == Action.GRANTED
    restored = state.event
    assert restored.evidence["undo_of"] == [withdrawal.pk]
    assert (restored.source_type, restored.notice_id, restored.channel) == (
        SourceType.PRIVACY_CENTER, grant.notice_id, "sms",
    )  # fmt: skip
    ledger = list(ConsentEvent.objects.filter(member_id=shopper.pk).order_by("pk").values_list("action", flat=True))
    assert ledger == [Action.GRANTED, Action.WITHDRAWN, Action.GRANTED]  # the withdrawal stays on record
    # The normal path's side effects: a webhook row for the withdrawal and one for the undo.
    assert len(webhook_rows_for(withdrawal)) == 1 and len(webhook_rows_for(restored)) == 1
    after = signed_in_english.get("/privacy/consents/").content.decode()
    assert "Restored: 营销信息 · SMS" in after
    switch = after.split(f'id="p-{purposes["marketing"].pk}-sms"')[1].split("</form>")[0]
    assert 'aria-checked="true"' in switch


def test_the_script_gets_the_undo_offer_as_json_and_undoes_by_fetch(signed_in_english, shopper, purposes):
    answer = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()

    assert answer["state"] == "off" and answer["message"] == "Turned off: 营销信息 · SMS"
    assert answer["undo"]["url"] == "/privacy/consents/undo/" and answer["undo"]["seconds"] == 15
    undone = signed_in_english.post(
        "/privacy/consents/undo/", {"token": answer["undo"]["token"]}, HTTP_X_REQUESTED_WITH="fetch"
    )
    assert undone.status_code == 200
    assert undone.json() == {
        "message": "Restored: 营销信息 · SMS",
        "switches": [{"key": f"{purposes['marketing'].pk}-sms", "state": "on"}],
    }
    assert sms_state(shopper, purposes).action == Action.GRANTED


def test_the_consents_page_carries_the_form_the_script_copies(signed_in_english, shopper):
    page = signed_in_english.get("/privacy/consents/").content.decode()
    template = page.split('<template id="undo-template">')[1].split("</template>")[0]
    assert UNDO_FORM in template and UNDO_BUTTON in template and 'role="status"' in template
    assert 'data-one="{n} second left"' in template and 'data-other="{n} seconds left"' in template


def test_nothing_to_undo_when_the_switch_was_off_already(signed_in_english, shopper, purposes):
    switch_off(signed_in_english, purposes["marketing"], follow=True)
    again = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()
    assert again["state"] == "off" and "undo" not in again
    sharing = signed_in_english.post(
        "/privacy/consents/set/", {"purpose": purposes["sharing"].pk, "channel": "", "value": "off"}, follow=True
    )
    message = sharing.content.decode().split('<ul class="messages">')[1].split("</ul>")[0]
    assert "Turned off" in message and UNDO_FORM not in message  # never asked: nothing was on


def test_undo_after_its_time_is_refused_and_records_nothing(signed_in_english, shopper, purposes, monkeypatch):
    token = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()["undo"]["token"]
    count = ConsentEvent.objects.count()
    later = time.time() + 60
    monkeypatch.setattr(signing.time, "time", lambda: later)

    response = signed_in_english.post("/privacy/consents/undo/", {"token": token})

    assert response.status_code == 410
    assert "The time to undo has run out" in response.content.decode()
    assert ConsentEvent.objects.count() == count and sms_state(shopper, purposes).action == Action.WITHDRAWN


def test_a_forged_token_is_refused(signed_in_english, shopper, purposes):
    token = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()["undo"]["token"]
    count = ConsentEvent.objects.count()
    for forged in (token[:-2] + "xx", "", signing.dumps({"m": shopper.pk, "w": [1]}, salt="another.use")):
        response = signed_in_english.post("/privacy/consents/undo/", {"token": forged}, HTTP_X_REQUESTED_WITH="fetch")
        assert response.status_code == 400 and response.json()["reason"] == "forged"
    assert ConsentEvent.objects.count() == count


def test_another_persons_withdrawal_cannot_be_undone(signed_in_english, shopper, other_shopper, jd, purposes):
    withdrawal = services.record_consent(
        member=other_shopper, brand=jd.brand, purpose=purposes["marketing"], channel="sms",
        action=Action.WITHDRAWN, source_type=SourceType.PRIVACY_CENTER,
    ).event  # fmt: skip
    their_token = choices.undo_token([withdrawal])
    assert their_token  # a real offer, signed by us, for them
    mine_on_theirs = signing.dumps({"m": shopper.pk, "w": [withdrawal.pk]}, salt=choices.UNDO_SALT)
    count = ConsentEvent.objects.count()

    for token in (their_token, mine_on_theirs):
        assert signed_in_english.post("/privacy/consents/undo/", {"token": token}).status_code == 404

    assert ConsentEvent.objects.count() == count
    assert ConsentState.objects.get(member_id=other_shopper.pk, channel="sms").action == Action.WITHDRAWN


def test_a_second_click_records_nothing_more(signed_in_english, shopper, purposes):
    token = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()["undo"]["token"]
    assert signed_in_english.post("/privacy/consents/undo/", {"token": token}).status_code == 302
    count = ConsentEvent.objects.count()

    second = signed_in_english.post("/privacy/consents/undo/", {"token": token})

    assert second.status_code == 409 and "This was undone already." in second.content.decode()
    assert ConsentEvent.objects.count() == count
    assert ConsentEvent.objects.filter(member_id=shopper.pk, evidence__contains='"undo_of"').count() == 1


def test_a_change_in_between_wins_over_the_undo(signed_in_english, shopper, tmall, purposes):
    token = switch_off(signed_in_english, purposes["marketing"], HTTP_X_REQUESTED_WITH="fetch").json()["undo"]["token"]
    # The store records a new choice of the person before they click Undo.
    services.record_consent(
        member=shopper, brand=tmall.brand, purpose=purposes["marketing"], channel="sms",
        action=Action.WITHDRAWN, source_type=SourceType.STORE, store=tmall,
    )  # fmt: skip
    count = ConsentEvent.objects.count()

    response = signed_in_english.post("/privacy/consents/undo/", {"token": token}, HTTP_X_REQUESTED_WITH="fetch")

    assert response.status_code == 409 and response.json()["reason"] == "changed"
    assert "changed again since" in response.json()["error"]
    assert ConsentEvent.objects.count() == count


def test_undo_of_withdraw_everything_restores_every_choice(
    signed_in_english, shopper, brand, tmall, purposes, django_capture_on_commit_callbacks
):
    signed_in_english.post(
        "/privacy/consents/set/", {"purpose": purposes["sharing"].pk, "channel": "", "value": "on"}, follow=True
    )
    # E-mail confirmed through the store's own double opt-in.
    services.record_consent(
        member=shopper, brand=brand, purpose=purposes["marketing"], channel="email", action=Action.CONFIRMED,
        source_type=SourceType.STORE, store=tmall,
        confirmation={"confirmed_at": "2026-01-02T03:04:05+08:00", "ip": "203.0.113.9", "message_id": "<m1@shop>"},
    )  # fmt: skip
    page = signed_in_english.post("/privacy/consents/withdraw-all/", {"brand": brand.pk}, follow=True).content.decode()
    message = page.split('<ul class="messages">')[1].split("</li>")[0]
    assert "every consent is withdrawn (3 choices)" in message and UNDO_FORM in message
    assert not ConsentState.objects.filter(member_id=shopper.pk).exclude(action=Action.WITHDRAWN).exists()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in_english.post("/privacy/consents/undo/", {"token": offered_token(page)}, follow=True)

    states = dict(ConsentState.objects.filter(member_id=shopper.pk).values_list("channel", "action"))
    assert states == {"sms": Action.GRANTED, "": Action.GRANTED, "email": Action.REQUESTED}
    undos = ConsentEvent.objects.filter(member_id=shopper.pk, evidence__contains='"undo_of"')
    assert undos.count() == 3 and len({tuple(e.evidence["undo_of"]) for e in undos}) == 1
    # E-mail follows the double opt-in rule: a new link, and the page says so.
    assert any("/privacy/confirm/" in m.body for m in mail.outbox)
    text = response.content.decode()
    assert "Restored: " in text and "E-mail stays off until you open the new confirmation link" in text


def test_the_browsers_privacy_signal_keeps_sharing_off(signed_in_english, shopper, brand, purposes):
    brand.jurisdiction = "EU"  # honours Global Privacy Control by default
    brand.save(update_fields=["jurisdiction"])
    sharing = purposes["sharing"]
    sharing.is_sale_or_sharing = True
    sharing.save(update_fields=["is_sale_or_sharing"])
    signed_in_english.post("/privacy/consents/set/", {"purpose": sharing.pk, "channel": "", "value": "on"})
    off = signed_in_english.post(
        "/privacy/consents/set/", {"purpose": sharing.pk, "channel": "", "value": "off"}, HTTP_X_REQUESTED_WITH="fetch"
    )
    count = ConsentEvent.objects.count()

    response = signed_in_english.post(
        "/privacy/consents/undo/", {"token": off.json()["undo"]["token"]}, HTTP_X_REQUESTED_WITH="fetch",
        HTTP_SEC_GPC="1",
    )  # fmt: skip

    assert response.status_code == 409 and response.json()["reason"] == "gpc"
    assert ConsentEvent.objects.count() == count


def test_undo_needs_a_post_with_a_csrf_token(account, shopper, purposes):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(account.user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post("/privacy/consents/undo/", {"token": "x"}).status_code == 403
    assert client.get("/privacy/consents/undo/").status_code == 405


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_record_one_grant(shopper, purposes):
    """Two requests with the same offer at the same moment (a double tap): the second waits
    for the first one's member lock, then finds the choice undone. PostgreSQL only: SQLite
    runs one writer at a time anyway."""
    withdrawal = services.record_consent(
        member=shopper, brand=purposes["marketing"].brand, purpose=purposes["marketing"], channel="sms",
        action=Action.WITHDRAWN, source_type=SourceType.PRIVACY_CENTER,
    ).event  # fmt: skip
    token = choices.undo_token([withdrawal])
    start, outcomes = threading.Barrier(2), []

    def click() -> None:
        try:
            start.wait()
            choices.undo_withdrawal(member=shopper, token=token, evidence={})
            outcomes.append("restored")
        except choices.UndoRefused as refused:
            outcomes.append(refused.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["restored", "undone"]
    assert ConsentEvent.objects.filter(member_id=shopper.pk, evidence__contains='"undo_of"').count() == 1
