"""The typeface of the compliance PDF: a TrueType font with Chinese, Cyrillic and Latin
letters, embedded (subset) in every document so that it reads the same in every reader.

Where it comes from, first found wins:

1. Noto Sans SC from npm (``@expo-google-fonts/noto-sans-sc`` in package.json), which
   ``make install`` puts in ``node_modules/`` with the dashboard's front-end files;
2. Debian's ``fonts-wqy-microhei`` (WenQuanYi Micro Hei), for a deployment without npm.

Both are TrueType outlines, which reportlab can embed; the CJK fonts Debian and the usual npm
packages ship are CFF OpenType or split web fonts, which it cannot. Without either file the
PDF is still made, set in STSong-Light (a CID font the reader supplies, not embedded, whose
Latin and Cyrillic letters are set wide apart), and a warning says so in the log.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont

logger = logging.getLogger(__name__)

FALLBACK = "STSong-Light"


@dataclass(frozen=True)
class Candidate:
    name: str  # the name reportlab registers it under
    path: Path
    subfont: int = 0  # the face inside a TrueType collection (.ttc)


def candidates() -> list[Candidate]:
    return [
        Candidate(
            "NotoSansSC",
            Path(settings.BASE_DIR)
            / "node_modules/@expo-google-fonts/noto-sans-sc/400Regular/NotoSansSC_400Regular.ttf",
        ),
        Candidate("WenQuanYiMicroHei", Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")),
    ]


@functools.cache
def report_font() -> str:
    """The registered name of the first usable font of ``candidates()``, or ``FALLBACK``
    (registered too) when there is none. Looked up once per process."""
    for candidate in candidates():
        if not candidate.path.is_file():
            continue
        try:
            pdfmetrics.registerFont(TTFont(candidate.name, str(candidate.path), subfontIndex=candidate.subfont))
        except TTFError as error:  # a truncated download, or a font that forbids embedding
            logger.warning("Cannot use %s for the compliance PDF: %s", candidate.path, error)
            continue
        return candidate.name
    if FALLBACK not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK))
    return FALLBACK


def embedded() -> bool:
    """Whether the PDF gets an embedded font; warns in the log when it does not."""
    if report_font() != FALLBACK:
        return True
    logger.warning(
        "The compliance PDF is set in %s, which is not embedded (and sets Cyrillic letters wide apart): "
        "no TrueType font with Chinese and Cyrillic letters was found at %s. Run `make install` (npm) or "
        "install Debian's fonts-wqy-microhei.",
        FALLBACK,
        ", ".join(str(c.path) for c in candidates()),
    )
    return False
