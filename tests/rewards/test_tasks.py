"""Rewards' background work through a real Celery worker (PostgreSQL + Redis)."""

import pytest
from django.core.files.base import ContentFile

from loyalty.services import points_credit
from rewards import codes, services
from rewards.models import VoucherImport
from rewards.tasks import run_voucher_import
from tests.conftest import message_text, wait_until
from tests.factories import MemberFactory, RewardFactory

pytestmark = pytest.mark.celery_worker


def test_the_worker_sends_the_voucher_email_with_its_qr_code(program, celery_worker, smtp_sink):
    member = MemberFactory(language="nl", email="sem@example.com")
    points_credit(member=member, points=500, reason="Welkom")
    reward = RewardFactory(name_nl="Bioscoopkaartje", points_cost=400)
    services.codes_generate(reward=reward, count=1)

    redemption = services.reward_redeem(member=member, reward=reward)

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "sem@example.com"
    assert message["Subject"] == "Je beloning: Bioscoopkaartje"
    assert codes.display(redemption.code) in message_text(message)
    assert any(part.get_content_type() == "image/png" for part in message.walk())


def test_the_worker_imports_a_partner_csv(program, celery_worker, admin_user):
    reward = RewardFactory()
    job = VoucherImport(reward=reward, created_by=admin_user)
    job.file.save("codes.csv", ContentFile(b"code\nP-0001\nP-0002\nP-0001\n"), save=True)

    run_voucher_import.delay(job.pk)

    done = wait_until(lambda: VoucherImport.objects.filter(pk=job.pk, status="done").first())
    assert done.created_rows == 2 and [error["row"] for error in done.errors] == [4]
    assert set(reward.codes.values_list("code", flat=True)) == {"P0001", "P0002"}
