"""Benchmark: the pages people use all day, on the 1M-member / 10M-purchase database.

    .venv/bin/python bench/seed_large.py --keep          # once: creates loyalty_bench
    .venv/bin/python bench/pages.py [--database loyalty_bench] [--rounds 3] [--only TEXT]

Seeds nothing. It points the settings at the benchmark database, logs a superuser in with
Django's test client (creating `bench-pages@example.com` if missing) and times, warm (one request
first, then --rounds timed ones; the median is reported):

- every admin changelist of the admin index, and the change page of one object of each model;
- the dashboards and report pages named on the index (KPIs, segments, reward performance) and
  the segmentation runs;
- a member search by member number, by full e-mail address (in upper case: the lookup ignores
  case) and by part of a last name;
- the campaign with the most recipients (its results page, its recipients and a recipient search),
  the comparison page and every automation's page (`manage.py demo_campaigns` puts a campaign with
  a few hundred thousand recipients and its results on this database);
- every portal page for one active member with purchases (the member is given a portal login,
  `bench-portal@example.com`, if none of the database's members has one).

When the database has no finished segmentation run, the dashboard would show an empty page:
the script then runs one recalculation first (what the nightly task does), unless --no-run.
It prints a table with the median time, the SQL statements of a request, the target (300 ms;
a member search by number or e-mail 50 ms) and whether it is met, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE_TARGET_MS = 300
LOOKUP_TARGET_MS = 50
ADMIN_EMAIL = "bench-pages@example.com"
PORTAL_EMAIL = "bench-portal@example.com"


@dataclass
class Page:
    group: str
    name: str
    url: str
    target_ms: int = PAGE_TARGET_MS
    portal: bool = False


@dataclass
class Timing:
    page: Page
    median_ms: float
    queries: int
    status: int
    slowest_sql_ms: float
    slowest_sql: str


def _setup(database: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    import django

    django.setup()


def _admin_user():
    from members.models import User

    user = User.objects.filter(email=ADMIN_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(ADMIN_EMAIL, password=None)
    return user


def _portal_member():
    """An active member with purchases and a portal login (given one if none has)."""
    from django.db import transaction

    from loyalty.models import Purchase
    from members.models import Member, MemberStatus, User

    member = Member.objects.filter(user__isnull=False, status=MemberStatus.ACTIVE).first()
    if member is not None:
        return _terms_accepted(member)
    with transaction.atomic():
        purchase = (
            Purchase.objects.filter(member__status=MemberStatus.ACTIVE)
            .select_related("member")
            .order_by("-pk")
            .first()
        )
        if purchase is None:
            return None
        member = purchase.member
        user = User.objects.filter(email=PORTAL_EMAIL).first() or User.objects.create_user(
            PORTAL_EMAIL, password=None
        )
        member.user = user
        member.save(update_fields=["user"])
    return _terms_accepted(member)


def _terms_accepted(member):
    """The member as after accepting the current terms (else every portal page is the
    terms page's redirect)."""
    from members.services import terms_accept, terms_pending

    pending = terms_pending(member=member)
    if pending is not None:
        terms_accept(member=member, terms=pending)
    return member


def _ensure_segmentation_run(allowed: bool) -> None:
    from segmentation import selectors

    if selectors.current_run() is not None or not allowed:
        return
    from segmentation import services

    print("No finished segmentation run: running one recalculation first …", flush=True)
    started = time.perf_counter()
    services.recalculate()
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)


def admin_pages() -> list[Page]:
    from django.contrib import admin
    from django.db import DatabaseError
    from django.urls import NoReverseMatch, reverse

    pages: list[Page] = []
    for model, _model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        pages.append(Page("admin list", label, changelist))
        # The first row by primary key: an index scan, whatever the table's size.
        try:
            pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        except DatabaseError:  # a table the database lacks: its pages answer 500
            pk = None
        if pk is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
            pages.append(Page("admin change", label, change))
    return pages


def report_pages() -> list[Page]:
    from django.urls import reverse

    from segmentation import selectors

    pages = [
        Page("report", "admin index", reverse("admin:index")),
        Page("report", "KPIs", reverse("admin:kpis")),
        Page("report", "segments dashboard", reverse("admin:segmentation_dashboard")),
        Page("report", "reward performance", reverse("admin:rewards_performance")),
        Page("report", "runs", reverse("admin:segmentation_segmentationrun_changelist")),
    ]
    run = selectors.current_run()
    if run is not None:
        pages.append(
            Page(
                "report",
                "run page",
                reverse("admin:segmentation_segmentationrun_change", args=[run.pk]),
            )
        )
    return pages


def campaign_pages() -> list[Page]:
    """The campaign with the most recipients (`manage.py demo_campaigns` makes one on this
    database): its page with the results, its recipients, a recipient search; the comparison
    page; every automation's page. Nothing when there is no campaign."""
    from urllib.parse import urlencode

    from django.db.models import Count
    from django.urls import reverse

    from campaigns.models import Automation, Campaign, Recipient

    campaign = Campaign.objects.annotate(size=Count("recipients")).order_by("-size", "pk").first()
    if campaign is None:
        return []
    recipients = reverse("admin:campaigns_recipient_changelist")
    one = Recipient.objects.filter(campaign=campaign).select_related("member").order_by("pk")
    pages = [
        Page(
            "campaign",
            f"campaign with results ({campaign.size:,} recipients)",  # type: ignore[attr-defined]
            reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        ),
        Page(
            "campaign",
            "its recipients",
            recipients + "?" + urlencode({"campaign__id__exact": campaign.pk}),
        ),
        Page("campaign", "compare campaigns", reverse("admin:campaigns_campaign_compare")),
    ]
    first = one.first()
    if first is not None:
        pages.append(
            Page(
                "campaign",
                "recipients by member number",
                recipients + "?" + urlencode({"q": first.member.member_number}),
                LOOKUP_TARGET_MS,
            )
        )
    for automation in Automation.objects.order_by("pk"):
        pages.append(
            Page(
                "campaign",
                f"automation {automation.trigger}",
                reverse("admin:campaigns_automation_change", args=[automation.pk]),
            )
        )
    return pages


def search_pages(member) -> list[Page]:
    from urllib.parse import urlencode

    from django.urls import reverse

    changelist = reverse("admin:members_member_changelist")
    name_part = (member.last_name or member.first_name or member.email)[:5]
    return [
        Page(
            "search",
            "member by number",
            changelist + "?" + urlencode({"q": member.member_number}),
            LOOKUP_TARGET_MS,
        ),
        Page(
            "search",
            "member by e-mail",
            changelist + "?" + urlencode({"q": member.email.upper()}),
            LOOKUP_TARGET_MS,
        ),
        Page(
            "search",
            f"member by part of a name ({name_part!r})",
            changelist + "?" + urlencode({"q": name_part}),
        ),
        Page(
            "search",
            "purchases by member number",
            reverse("admin:loyalty_purchase_changelist")
            + "?"
            + urlencode({"q": member.member_number}),
        ),
        Page(
            "search",
            "ledger by member number",
            reverse("admin:loyalty_ledgerentry_changelist")
            + "?"
            + urlencode({"q": member.member_number}),
        ),
    ]


def portal_pages(member) -> list[Page]:
    from django.urls import reverse

    from rewards.models import Redemption

    names = [
        "points:dashboard",
        "points:history",
        "members:account",
        "members:consent",
        "members:profiling",
        "members:faq",
        "members:privacy",
        "members:terms",
        "members:password_change",
        "members:data_export",
        "members:erase",
        "rewards:catalogue",
        "rewards:mine",
    ]
    pages = [Page("portal", name, reverse(name), portal=True) for name in names]
    redemption = Redemption.objects.filter(member=member).order_by("-pk").first()
    if redemption is not None:
        pages.append(
            Page(
                "portal",
                "rewards:redemption",
                reverse("rewards:redemption", args=[redemption.pk]),
                portal=True,
            )
        )
    return pages


def measure(client, page: Page, rounds: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(page.url)  # warm: templates, caches, the database's buffers
    times = []
    statements: list[dict] = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(page.url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
        statements = captured.captured_queries
    slowest = max(statements, key=lambda q: float(q["time"]), default=None)
    return Timing(
        page=page,
        median_ms=statistics.median(times),
        queries=len(statements),
        status=response.status_code,
        slowest_sql_ms=float(slowest["time"]) * 1000 if slowest else 0.0,
        slowest_sql=slowest["sql"] if slowest else "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="loyalty_bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="time only pages whose name or URL has this")
    parser.add_argument("--no-run", action="store_true", help="never run a recalculation")
    parser.add_argument("--language", default="en", choices=["en", "nl"])
    parser.add_argument("--sql", action="store_true", help="print each slow page's slowest SQL")
    args = parser.parse_args()

    _setup(args.database)
    from django.conf import settings
    from django.test import Client
    from django.utils import translation
    from rich.console import Console
    from rich.table import Table
    from tqdm import tqdm

    translation.activate(args.language)
    console = Console(width=150)
    load_before = os.getloadavg()
    _ensure_segmentation_run(allowed=not args.no_run)
    member = _portal_member()
    # A page that fails is reported with its status instead of ending the run.
    staff = Client(HTTP_ACCEPT_LANGUAGE=args.language, raise_request_exception=False)
    staff.cookies[settings.LANGUAGE_COOKIE_NAME] = args.language
    staff.force_login(_admin_user())
    portal = Client(HTTP_ACCEPT_LANGUAGE=args.language, raise_request_exception=False)
    portal.cookies[settings.LANGUAGE_COOKIE_NAME] = args.language

    pages = report_pages() + admin_pages() + campaign_pages()
    if member is not None:
        portal.force_login(member.user)
        pages += search_pages(member) + portal_pages(member)
    if args.only:
        pages = [p for p in pages if args.only in p.name or args.only in p.url]

    timings = []
    for page in (progress := tqdm(pages, desc="pages", unit="page")):
        timing = measure(portal if page.portal else staff, page, args.rounds)
        timings.append(timing)
        progress.write(
            f"{timing.median_ms:9,.0f} ms {timing.queries:4} queries  [{timing.status}] "
            f"{page.group}: {page.name}"
        )
    load_after = os.getloadavg()

    table = Table(title=f"{args.database}: median of {args.rounds} warm requests")
    for column in ("group", "page", "status", "ms", "queries", "slowest SQL ms", "target", "met"):
        table.add_column(column, justify="right" if column not in ("group", "page") else "left")
    for timing in timings:
        met = timing.status < 400 and timing.median_ms <= timing.page.target_ms
        table.add_row(
            timing.page.group,
            timing.page.name,
            str(timing.status),
            f"{timing.median_ms:,.0f}",
            str(timing.queries),
            f"{timing.slowest_sql_ms:,.0f}",
            str(timing.page.target_ms),
            "[green]yes[/]" if met else "[red]no[/]",
        )
    console.print(table)
    missed = [t for t in timings if t.status >= 400 or t.median_ms > t.page.target_ms]
    console.print(
        f"{len(timings) - len(missed)} of {len(timings)} pages within target; load average "
        f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (2 cores)."
    )
    if args.sql:
        for timing in missed:
            console.print(f"\n[bold]{timing.page.name}[/] {timing.page.url}")
            console.print(f"  {timing.slowest_sql_ms:,.0f} ms: {timing.slowest_sql[:600]}")


if __name__ == "__main__":
    main()
