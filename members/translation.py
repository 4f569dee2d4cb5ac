"""Translated brand fields (django-modeltranslation): the name shoppers read, per language."""

from __future__ import annotations

from modeltranslation.translator import TranslationOptions, register

from .models import Brand


@register(Brand)
class BrandTranslation(TranslationOptions):
    fields = ("display_name",)
