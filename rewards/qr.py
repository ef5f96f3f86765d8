"""The voucher's QR code, one drawing for the portal (SVG) and the e-mail (PNG)."""

from __future__ import annotations

import io

import segno

# Quiet zone in modules around the code: the QR specification asks for four, and till scanners
# fail on less.
BORDER = 4
# Error correction "M" (15 %): survives a scratched screen or a fold in a print-out while
# keeping the code small enough for a phone to read from a distance.
ERROR_LEVEL = "m"


def voucher_qr(code: str) -> segno.QRCode:
    """A standard QR code, never Micro QR (which most phones and tills cannot read)."""
    return segno.make(code, error=ERROR_LEVEL, micro=False, boost_error=False)


def voucher_qr_png(code: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    voucher_qr(code).save(buffer, kind="png", scale=scale, border=BORDER)
    return buffer.getvalue()


def voucher_qr_svg(code: str, *, title: str) -> str:
    """Inline SVG without a fixed size (only a viewBox), so the drawing fills its box: the
    page's CSS decides how large it is."""
    return voucher_qr(code).svg_inline(
        border=BORDER, title=title, omitsize=True, svgclass="voucher-qr-code"
    )
