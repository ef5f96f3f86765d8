"""The voucher's QR code, one drawing for the portal (SVG) and the e-mail (PNG)."""

from __future__ import annotations

import io

import segno

# Quiet zone in modules around the code; scanners need it.
BORDER = 2


def voucher_qr(code: str) -> segno.QRCode:
    """A standard QR code (never Micro QR, which most phones and tills cannot read)."""
    return segno.make_qr(code, error="m")


def voucher_qr_png(code: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    voucher_qr(code).save(buffer, kind="png", scale=scale, border=BORDER)
    return buffer.getvalue()


def voucher_qr_svg(code: str, *, title: str, scale: int = 6) -> str:
    return voucher_qr(code).svg_inline(scale=scale, border=BORDER, title=title)
