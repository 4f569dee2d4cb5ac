"""Scans of consent forms signed on paper: what a file is (judged by its content, never by
its name alone), where it is kept (Django storage, named by brand and SHA-256, so the
name holds nothing of the person), and whether the kept file is still the one the ledger
names. The SHA-256 goes into the evidence of the events recorded from the form, so the
hash chain covers the scan (``consent.services.paper``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

SCAN_DIR = "consent-scans"
PDF, JPEG, PNG = "pdf", "jpeg", "png"
CONTENT_TYPES = {PDF: "application/pdf", JPEG: "image/jpeg", PNG: "image/png"}
EXTENSIONS = {PDF: (".pdf",), JPEG: (".jpg", ".jpeg"), PNG: (".png",)}
_MAGIC = ((b"%PDF-", PDF), (b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
_PILLOW_FORMATS = {"JPEG": JPEG, "PNG": PNG}
CHUNK = 64 * 1024


class ScanError(ValueError):
    """A file that is not a scan we keep; ``message`` says why, for the form."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Scan:
    kind: str  # PDF, JPEG or PNG
    sha256: str
    size: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]

    def path(self, brand_id: int) -> str:
        return f"{SCAN_DIR}/{brand_id}/{self.sha256}.{EXTENSIONS[self.kind][0].lstrip('.')}"

    def evidence(self, brand_id: int) -> dict[str, Any]:
        """What the ledger keeps of the file: enough to find it and to prove it unchanged."""
        return {"sha256": self.sha256, "file": self.path(brand_id), "type": self.content_type, "bytes": self.size}


def inspect_scan(upload: Any) -> Scan:
    """The scan in ``upload`` (a Django ``UploadedFile``), or ``ScanError``: empty, larger
    than ``CONSENT_SCAN_MAX_BYTES``, not a PDF, JPEG or PNG by its content, damaged, or
    named as another kind than it is (a forged extension)."""
    size = upload.size or 0
    limit = settings.CONSENT_SCAN_MAX_BYTES
    if size == 0:
        raise ScanError(_("The file is empty."))
    if size > limit:
        raise ScanError(
            _("The file is %(size)s MB; scans of up to %(limit)s MB are kept.")
            % {"size": f"{size / 1048576:.1f}", "limit": f"{limit / 1048576:g}"}
        )
    upload.seek(0)
    head = upload.read(16)
    kind = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if kind is None:
        raise ScanError(_("This file is not a PDF, JPEG or PNG scan."))
    upload.seek(0)
    if kind == PDF:
        _check_pdf(upload)
    else:
        _check_image(upload, kind)
    suffix = PurePath(upload.name or "").suffix.lower()
    if suffix not in EXTENSIONS[kind]:
        raise ScanError(
            _("The file is named “%(suffix)s” but its content is a %(kind)s file: upload the scan itself.")
            % {"suffix": suffix or _("(no extension)"), "kind": kind.upper()}
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return Scan(kind=kind, sha256=digest.hexdigest(), size=size)


def _check_pdf(upload: Any) -> None:
    from pypdf import PdfReader

    try:
        pages = len(PdfReader(upload, strict=False).pages)
    except Exception:  # pypdf raises many kinds for a damaged file; any means "not a PDF we can read"
        pages = 0
    if pages < 1:
        raise ScanError(_("This PDF cannot be read: it is damaged or not really a PDF."))


def _check_image(upload: Any, kind: str) -> None:
    from PIL import Image

    try:
        with Image.open(upload) as image:
            found = _PILLOW_FORMATS.get(image.format or "")
            image.verify()
    except Exception:  # Pillow's errors for a damaged or hostile image (bombs included)
        found = None
    if found != kind:
        raise ScanError(
            _("This image cannot be read: it is damaged or not really a %(kind)s file.") % {"kind": kind.upper()}
        )


def keep_scan(upload: Any, scan: Scan, brand_id: int) -> tuple[str, bool]:
    """Store the file under its content's name; ``(path, created)``: created is False when
    the same scan was kept before (nothing is written twice). Slow I/O: call it outside a
    transaction."""
    path = scan.path(brand_id)
    if default_storage.exists(path):
        return path, False
    upload.seek(0)
    saved = default_storage.save(path, upload)
    if saved != path:  # someone stored the same scan in between: keep theirs
        default_storage.delete(saved)
        return path, False
    return path, True


def forget_scan(path: str) -> None:
    if path.startswith(f"{SCAN_DIR}/"):
        default_storage.delete(path)


def open_scan(path: str) -> IO[bytes] | None:
    """The kept file, or None when it is gone (the person's data was erased)."""
    if not path.startswith(f"{SCAN_DIR}/") or not default_storage.exists(path):
        return None
    return default_storage.open(path, "rb")


INTACT, CHANGED, GONE = "intact", "changed", "gone"


def scan_state(evidence: dict[str, Any]) -> str:
    """Whether the kept file still has the SHA-256 the ledger holds."""
    handle = open_scan(str(evidence.get("file", "")))
    if handle is None:
        return GONE
    digest = hashlib.sha256()
    with handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return INTACT if digest.hexdigest() == evidence.get("sha256") else CHANGED


def scan_of(evidence: Any) -> dict[str, Any] | None:
    """The scan named in an event's evidence, if any."""
    scan = evidence.get("scan") if isinstance(evidence, dict) else None
    return scan if isinstance(scan, dict) and scan.get("file") and scan.get("sha256") else None


def forget_scans(paths: Iterable[str]) -> int:
    """Delete kept scans (an erasure: the ledger keeps their SHA-256 as the proof)."""
    done = 0
    for path in sorted(set(paths)):
        if path.startswith(f"{SCAN_DIR}/") and default_storage.exists(path):
            default_storage.delete(path)
            done += 1
    return done
