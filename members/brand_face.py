"""What a brand's face in the privacy center may be (``Brand`` fields, ``privacy.face``):
an accent colour white text can sit on, a small raster logo, an SMS signature gateways
accept."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

MIN_ACCENT_CONTRAST = 4.5
LOGO_MAX_BYTES = 256 * 1024
LOGO_MAX_SIDE = 1024
LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def contrast_with_white(color: str) -> float:
    """WCAG contrast ratio of ``#rrggbb`` against white."""

    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (luminance + 0.05)


def validate_logo(file: object) -> None:
    """A logo is a small raster image, judged by its content (no SVG: it can carry script)."""
    from django.core.exceptions import ValidationError
    from PIL import Image, UnidentifiedImageError

    size = getattr(file, "size", 0) or 0
    if size > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo is %(kb)d KB; at most 256 KB, please.") % {"kb": size // 1024})
    try:
        file.seek(0)  # type: ignore[attr-defined]
        with Image.open(file) as image:  # type: ignore[arg-type]
            kind, (width, height) = image.format, image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(_("This file is not a PNG, JPEG or WebP image.")) from None
    finally:
        file.seek(0)  # type: ignore[attr-defined]
    if kind not in LOGO_FORMATS:
        raise ValidationError(_("This file is not a PNG, JPEG or WebP image."))
    if max(width, height) > LOGO_MAX_SIDE:
        raise ValidationError(
            _("The logo is %(width)d×%(height)d pixels; at most 1024 on a side, please.")
            % {"width": width, "height": height}
        )


def validate_sms_signature(value: str) -> None:
    """What gateways accept between 【 and 】: 2 to 20 letters, digits or spaces, no brackets."""
    from django.core.exceptions import ValidationError

    if (
        not (2 <= len(value) <= 20)
        or any(ch in value for ch in "【】[]")
        or not all(ch.isalnum() or ch == " " for ch in value)
    ):
        raise ValidationError(_("Use 2 to 20 letters or digits without brackets, e.g. 莲花美妆."))
