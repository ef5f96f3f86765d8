"""The voucher's QR code is a standard QR code that a real decoder reads back, in the e-mail
(PNG) and the portal (SVG that fills its box); the voucher e-mail comes from the program."""

import io

import pytest
import zxingcpp
from PIL import Image

from loyalty.services import points_credit
from rewards import qr, services
from rewards.models import Redemption
from tests.factories import MemberFactory, RewardFactory

pytestmark = pytest.mark.django_db


def decode(png: bytes) -> list:
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))


@pytest.mark.parametrize("code", ["K7QM9XPA", "AB12", "CINEMA-2026-0001-XYZ"])
def test_the_png_is_a_standard_qr_code_that_decodes_to_the_voucher_code(code):
    [barcode] = decode(qr.voucher_qr_png(code))

    assert barcode.text == code
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode  # not Micro QR


def test_short_codes_are_never_micro_qr():
    assert not qr.voucher_qr("AB12").is_micro


def test_the_svg_has_no_fixed_size_so_it_fills_its_box():
    svg = qr.voucher_qr_svg("K7QM9XPA", title="QR")

    assert svg.startswith("<svg viewBox=")
    assert " width=" not in svg.split(">", 1)[0] and " height=" not in svg.split(">", 1)[0]


def test_the_png_keeps_the_four_module_quiet_zone():
    image = Image.open(io.BytesIO(qr.voucher_qr_png("K7QM9XPA", scale=1))).convert("L")
    symbol = qr.voucher_qr("K7QM9XPA").symbol_size(border=0)[0]

    assert image.size == (symbol + 8, symbol + 8)
    quiet = [image.getpixel((x, y)) for x in range(4) for y in range(image.size[1])]
    assert min(quiet) == 255


def test_the_voucher_email_carries_a_decodable_qr_and_comes_from_the_program(
    program, smtp_sink, settings, django_capture_on_commit_callbacks
):
    settings.DEFAULT_FROM_EMAIL = "Loyalty <punten@klantenclub.example>"
    member = MemberFactory(language="en")
    points_credit(member=member, points=1000, reason="Welcome")
    reward = RewardFactory(points_cost=300, name_en="Coffee for two")
    services.codes_generate(reward=reward, count=1)

    with django_capture_on_commit_callbacks(execute=True):
        services.reward_redeem(member=member, reward=reward)

    [message] = smtp_sink.wait_for(1)
    assert message["From"] == "Klantenclub <punten@klantenclub.example>"
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    [barcode] = decode(image.get_payload(decode=True))
    assert barcode.text == Redemption.objects.get().code
