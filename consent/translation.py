"""Translated content (django-modeltranslation): a column per language of
``settings.LANGUAGES`` for purpose names and descriptions and for notice drafts. Published
notices are not translated this way: each language is its own immutable row (evidence)."""

from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from .models import NoticeDraft, Purpose


@register(Purpose)
class PurposeTranslation(TranslationOptions):
    fields = ("name", "description")


@register(NoticeDraft)
class NoticeDraftTranslation(TranslationOptions):
    fields = ("title", "body", "change_summary")
