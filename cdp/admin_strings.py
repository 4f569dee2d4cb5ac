"""Django admin strings that Django's own Simplified Chinese catalogue leaves in English
(new in Django 5.1: the screen-reader headers of the app list). Our catalogue
(LOCALE_PATHS) takes precedence; listing the ids here keeps ``makemessages`` from
dropping them."""

from django.utils.translation import gettext_noop

MESSAGES = [
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
]
