"""The import page's templates: Chinese and English headers, CSV and XLSX, and each one
imports as it is (1 member created, 0 rows rejected, the SMS grant recorded)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consent.models import ConsentState
from members.models import Member

from .import_helpers import run_import

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_downloaded_template_imports_as_it_is(client, superuser, tmall, purposes, tmp_path, language, fmt):
    client.force_login(superuser)
    page = client.get(reverse("admin:imports_importjob_import")).content.decode()
    url = reverse("admin:imports_importjob_template", args=[language, fmt])
    assert url in page

    response = client.get(url)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    path = tmp_path / f"template.{fmt}"
    path.write_bytes(response.content)
    result = run_import(path, "lotus-tmall")

    assert (result["rows"], result["created"], result["rejected"]) == (1, 1, 0)
    member = Member.objects.get()
    assert (member.name, member.phone, member.city) == ("王小明", "+8613800138000", "上海")
    states = {(s.purpose.code, s.channel): s.action for s in ConsentState.objects.filter(member=member)}
    assert states == {("marketing", "sms"): "granted", ("personalization", ""): "withdrawn"}


def test_templates_need_the_import_permission_and_a_known_name(client, marketer, superuser):
    client.force_login(marketer)
    assert client.get(reverse("admin:imports_importjob_template", args=["zh", "csv"])).status_code == 403
    client.force_login(superuser)
    assert client.get(reverse("admin:imports_importjob_template", args=["fr", "csv"])).status_code == 404
    assert client.get(reverse("admin:imports_importjob_template", args=["zh", "pdf"])).status_code == 404
