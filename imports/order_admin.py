"""The admin page for order files: choose a store, upload the platform's order export,
see the counts and the rejected rows. Same permission as the member import
(``imports.add_importjob``); every import is audited (``orders.imported``).

The file is imported while the browser waits (it is kept only for that time), then the
page redirects to itself with the result (post/redirect/get), so a reload never imports
twice, though importing twice would change nothing anyway.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin_scope import scoped
from members.models import Store

from .orders import import_order_file, recognised
from .readers import FileProblem
from .reasons import duration_in_words, localized

SHOWN_ERRORS = 50
SESSION_KEY = "imports.order_import_result"
ENCODINGS = [("", _("Detect")), ("utf-8", "UTF-8"), ("gb18030", "GB18030 / GBK"), ("utf-16", "UTF-16")]


class OrderImportForm(forms.Form):
    store = forms.ModelChoiceField(
        queryset=Store.objects.filter(is_active=True).select_related("brand"), label=_("store")
    )
    file = forms.FileField(label=_("order export (CSV or XLSX)"))
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False, label=_("encoding"))


def urls(model_admin: admin.ModelAdmin) -> list[Any]:
    """The page's URL, mounted under the import jobs' admin."""
    view = model_admin.admin_site.admin_view(lambda request: order_import_view(request, model_admin))
    return [path("orders/", view, name="imports_importjob_orders")]


def order_import_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    if not request.user.has_perm("imports.add_importjob"):
        raise PermissionDenied
    form = OrderImportForm(request.POST or None, request.FILES or None)
    form.fields["store"].queryset = scoped(form.fields["store"].queryset, request.user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            store = form.cleaned_data["store"]
            upload = form.cleaned_data["file"]
            suffix = Path(upload.name).suffix.lower()[:10]
            try:
                with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
                    for block in upload.chunks():
                        handle.write(block)
                    handle.flush()
                    result = import_order_file(
                        Path(handle.name), store=store, encoding=form.cleaned_data["encoding"] or None
                    )
            except FileProblem as exc:
                form.add_error("file", localized(exc.args[0]))
                status = 400
            else:
                audit.record("orders.imported", store, changes={"file": upload.name[:255], **result.as_json()})
                request.session[SESSION_KEY] = {
                    "file": upload.name[:255],
                    "store": str(store),
                    "errors": [(row, column, value, localized(why)) for row, column, value, why in
                               result.errors[:SHOWN_ERRORS]],
                    "more": result.rejected > SHOWN_ERRORS,
                }  # fmt: skip
                messages.success(
                    request,
                    _("Imported %(rows)s order rows: %(created)s created, %(updated)s updated, %(unchanged)s "
                      "unchanged, %(rejected)s rejected; %(by_id)s linked by member id, %(by_phone)s by phone, "
                      "%(guests)s guests (%(duration)s).")
                    % {"rows": result.rows, "created": result.created, "updated": result.updated,
                       "unchanged": result.unchanged, "rejected": result.rejected,
                       "by_id": result.linked_by_member_id, "by_phone": result.linked_by_phone,
                       "guests": result.guests, "duration": duration_in_words(result.seconds)},
                )  # fmt: skip
                return HttpResponseRedirect(reverse("admin:imports_importjob_orders"))
        else:
            status = 400
    last = request.session.pop(SESSION_KEY, None) if request.method == "GET" else None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Import an order file"),
        "form": form,
        "layouts": recognised(),
        "last": last,
    }
    return TemplateResponse(request, "admin/imports/orders/import.html", context, status=status)
