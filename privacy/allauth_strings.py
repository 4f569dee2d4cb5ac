"""allauth messages the privacy center translates itself.

allauth's own Chinese catalogues leave English words ("Email") in some strings; our
catalogues (LOCALE_PATHS) take precedence. Listing the message ids here keeps
``makemessages`` from dropping them.
"""

from django.utils.translation import gettext_noop, pgettext_lazy

MESSAGES = [
    gettext_noop("Email Addresses"),
    gettext_noop("The following email addresses are associated with your account:"),
    gettext_noop("Primary"),
    gettext_noop("Re-send Verification"),
    gettext_noop("Add Email Address"),
    gettext_noop("Add Email"),
    gettext_noop("Do you really want to remove the selected email address?"),
    gettext_noop("Your email has been confirmed."),
    gettext_noop("Email Address"),
    gettext_noop("Current email"),
    gettext_noop("Change Email"),
    gettext_noop("Confirm Email Address"),
    gettext_noop("You cannot remove your primary email address (%(email)s)."),
    gettext_noop("You have confirmed %(email)s."),
    gettext_noop("Removed email address %(email)s."),
    gettext_noop("Primary email address set."),
    gettext_noop("Verify Your Email Address"),
    gettext_noop("Email Changed"),
    gettext_noop("Email Removed"),
    gettext_noop("Email Confirmation"),
    gettext_noop("Please Confirm Your Email Address"),
    gettext_noop("Your email verification code is listed below. Please enter it in your open browser window."),
]
LOGIN_LABEL = pgettext_lazy("field label", "Login")
