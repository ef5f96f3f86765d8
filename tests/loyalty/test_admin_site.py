"""The one admin site: our class as `admin.site`, its pages, and the parts apps add to a model's
admin page through the registry."""

import pytest
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.template import Template
from django.urls import resolve, reverse
from django.utils import translation

from loyalty.admin_site import LoyaltyAdminSite, admin_extensions
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered():
    """Register admin extensions for one test and remove them afterwards."""
    extensions = []

    def register(model, **parts):
        extension = admin_extensions.register(model, **parts)
        extensions.append(extension)
        return extension

    yield register
    for extension in extensions:
        admin_extensions.unregister(extension)


def test_the_admin_site_is_the_projects_site():
    assert admin.site.__class__ is LoyaltyAdminSite
    with translation.override("en"):
        assert str(admin.site.site_header) == "Loyalty back office"


def test_a_page_part_registered_in_the_registry_appears_on_the_member_page(
    admin_client, program, registered
):
    member = MemberFactory()
    registered(
        Member,
        page_part=lambda request, obj: {"test_greeting": f"Hello {obj.member_number}"},
        panel_template=Template('<div id="test-part">{{ test_greeting }}</div>'),
        object_tools=lambda request, obj: [("Test tool", f"/test-tool/{obj.pk}/")],
    )

    response = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    page = response.content.decode()
    assert f'<div id="test-part">Hello {member.member_number}</div>' in page
    assert f'<a href="/test-tool/{member.pk}/">Test tool</a>' in page
    assert 'id="points-ledger"' in page  # loyalty's own part is still there


def test_a_page_part_that_returns_nothing_shows_no_panel(admin_client, program, registered):
    member = MemberFactory()
    registered(
        Member,
        page_part=lambda request, obj: {},
        panel_template=Template('<div id="test-part">shown</div>'),
    )

    response = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    assert b'id="test-part"' not in response.content


def test_a_column_registered_in_the_registry_appears_on_the_member_list(
    admin_client, program, registered
):
    member = MemberFactory()

    @admin.display(description="test column")
    def test_column(member):
        return f"col-{member.member_number}"

    registered(Member, columns=[test_column])

    response = admin_client.get(reverse("admin:members_member_changelist"))

    assert b"Test column" in response.content
    assert f"col-{member.member_number}".encode() in response.content


def test_a_panel_template_without_a_page_part_is_refused_and_registers_nothing():
    before = admin_extensions.for_model(Member)

    with pytest.raises(ImproperlyConfigured):
        admin_extensions.register(Member, panel_template="admin/loyalty/member_points.html")

    assert admin_extensions.for_model(Member) == before


def test_a_registered_site_page_is_among_the_sites_urls_and_its_name_is_unique():
    site = LoyaltyAdminSite(name="testadmin")

    site.register_page("hello/", lambda request: HttpResponse("hi"), name="hello")

    hello = [pattern for pattern in site.get_urls() if getattr(pattern, "name", "") == "hello"]
    assert [str(pattern.pattern) for pattern in hello] == ["hello/"]
    with pytest.raises(ImproperlyConfigured):
        site.register_page("again/", lambda request: HttpResponse(""), name="hello")
    assert len(site.get_urls()) == len(LoyaltyAdminSite(name="other").get_urls()) + 1


def test_the_kpi_page_keeps_its_url_name_and_is_linked_from_the_index(admin_client, program):
    url = reverse("admin:kpis")

    index = admin_client.get(reverse("admin:index"))

    assert url == "/admin/kpis/"
    assert resolve(url).url_name == "kpis"
    assert admin_client.get(url).status_code == 200
    assert f'href="{url}"'.encode() in index.content
