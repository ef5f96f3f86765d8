"""The project's one admin site and the registries through which apps add to it.

Plumbing: imports no domain model, so every app may use it. The site replaces Django's default
(`loyalty.apps.LoyaltyAdminConfig.default_site`), so every `@admin.register` lands here and
`admin.site` is a `LoyaltyAdminSite`.

Two kinds of additions, both made in the adding app's `AppConfig.ready()`:

- site pages (`admin.site.register_page`): a view under the admin's root with its URL name,
  optionally listed among the index page's dashboards;
- parts of another app's model page (`admin_extensions.register`): columns, filters, URLs,
  object tools and a panel on the change page. The owning ModelAdmin mixes in
  `ExtensibleModelAdmin` and reads them, so no app patches another's admin class and an app
  lower in the order never imports a higher one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

PagePart = Callable[[HttpRequest, Any], dict]
ObjectTools = Callable[[HttpRequest, Any], Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class SitePage:
    route: str
    view: Callable
    name: str


@dataclass(frozen=True)
class IndexLink:
    """A dashboard named on the index page: its URL name (in the admin namespace) and text."""

    url_name: str
    title: str
    description: str = ""
    permission: str | None = None


class LoyaltyAdminSite(admin.AdminSite):
    """Django's AdminSite with the program's titles and pages that apps register."""

    site_header = _("Loyalty back office")
    site_title = _("Loyalty back office")
    index_title = _("Program management")
    # At 1366 px Django's model sidebar (300 px) and a list's filters (240 px) left a result
    # table 715 px: lists scrolled sideways. The index page and breadcrumbs navigate.
    enable_nav_sidebar = False

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._pages: list[SitePage] = []
        self._index_links: list[IndexLink] = []

    def register_page(
        self,
        route: str,
        view: Callable,
        *,
        name: str,
        title: str | None = None,
        description: str = "",
        permission: str | None = None,
    ) -> None:
        """Serve `view` (staff only, like every admin view) at `route` as `admin:<name>`.

        With a `title`, the index page lists it among the dashboards (for users holding
        `permission`, if one is given). The view checks any permission itself."""
        if any(page.name == name for page in self._pages):
            raise ImproperlyConfigured(f"An admin page named {name!r} is already registered.")
        self._pages.append(SitePage(route=route, view=view, name=name))
        if title is not None:
            self.register_index_link(
                url_name=name, title=title, description=description, permission=permission
            )

    def register_index_link(
        self, *, url_name: str, title: str, description: str = "", permission: str | None = None
    ) -> None:
        """Name a page served elsewhere in the admin (a ModelAdmin's URL) on the index page."""
        self._index_links.append(
            IndexLink(
                url_name=url_name, title=title, description=description, permission=permission
            )
        )

    def get_urls(self) -> list:
        pages = [
            path(page.route, self.admin_view(page.view), name=page.name) for page in self._pages
        ]
        return pages + super().get_urls()

    def index_links(self, request: HttpRequest) -> list[dict]:
        """The dashboards the user may open: url, title and description of each."""
        return [
            {
                "url": reverse(f"{self.name}:{link.url_name}", current_app=self.name),
                "title": link.title,
                "description": link.description,
            }
            for link in self._index_links
            if link.permission is None or request.user.has_perm(link.permission)
        ]

    def index(self, request: HttpRequest, extra_context: dict | None = None):
        context = {"dashboard_links": self.index_links(request), **(extra_context or {})}
        return super().index(request, extra_context=context)


# --- parts of a model page added by other apps ---------------------------------------------


@dataclass(frozen=True, eq=False)
class AdminExtension:
    """One app's additions to another app's ModelAdmin (see `AdminExtensions.register`)."""

    model: type[Model]
    columns: tuple = ()
    filters: tuple = ()
    select_related: tuple[str, ...] = ()
    urls: Callable[[admin.ModelAdmin], list[URLPattern]] | None = None
    page_part: PagePart | None = None
    panel_template: Any = None
    object_tools: ObjectTools | None = None


@dataclass
class AdminExtensions:
    """What apps add to ModelAdmins they do not own, in registration (= app) order."""

    _extensions: list[AdminExtension] = field(default_factory=list)

    def register(
        self,
        model: type[Model],
        *,
        columns: Sequence = (),
        filters: Sequence = (),
        select_related: Sequence[str] = (),
        urls: Callable[[admin.ModelAdmin], list[URLPattern]] | None = None,
        page_part: PagePart | None = None,
        panel_template: Any = None,
        object_tools: ObjectTools | None = None,
    ) -> AdminExtension:
        """Add to `model`'s admin: list `columns` (list_display entries) and `filters`
        (list_filter entries), `select_related` for the list, `urls(model_admin)` before its
        own, and on the change page `page_part(request, obj)` -> template context,
        `panel_template` (a template name, or a template object) rendered with it after the
        form when the part returned something, and `object_tools(request, obj)` ->
        [(label, url)] links above the form."""
        if panel_template is not None and page_part is None:
            raise ImproperlyConfigured("A panel template needs a page part to fill it.")
        extension = AdminExtension(
            model=model,
            columns=tuple(columns),
            filters=tuple(filters),
            select_related=tuple(select_related),
            urls=urls,
            page_part=page_part,
            panel_template=panel_template,
            object_tools=object_tools,
        )
        self._extensions.append(extension)
        return extension

    def unregister(self, extension: AdminExtension) -> None:
        self._extensions.remove(extension)

    def for_model(self, model: type[Model]) -> list[AdminExtension]:
        return [extension for extension in self._extensions if extension.model is model]


admin_extensions = AdminExtensions()


class ExtensibleModelAdmin(admin.ModelAdmin):
    """A ModelAdmin that other apps extend through `admin_extensions` (read per request, so
    the order in which admin modules and `ready()` run does not matter).

    Its change form template shows the parts: `{% include %}`s each of `page_panels` (the page
    context holds what every part returned) and links to the `page_object_tools` (label, url).
    """

    def _extensions(self) -> list[AdminExtension]:
        return admin_extensions.for_model(self.model)

    def get_list_display(self, request):
        extra = [column for ext in self._extensions() for column in ext.columns]
        return [*super().get_list_display(request), *extra]

    def get_list_filter(self, request):
        extra = [list_filter for ext in self._extensions() for list_filter in ext.filters]
        return [*super().get_list_filter(request), *extra]

    def get_list_select_related(self, request):
        own = super().get_list_select_related(request)
        extra = [name for ext in self._extensions() for name in ext.select_related]
        if isinstance(own, bool):
            # True: everything already; False: Django decides unless we name relations.
            return own if own or not extra else extra
        return [*own, *extra]

    def get_urls(self):
        extra = [url for ext in self._extensions() if ext.urls for url in ext.urls(self)]
        return extra + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        panels, tools = [], []
        if obj is not None:
            for ext in self._extensions():
                if ext.page_part is not None:
                    part = ext.page_part(request, obj)
                    extra.update(part)
                    if part and ext.panel_template is not None:
                        panels.append(ext.panel_template)
                if ext.object_tools is not None:
                    tools.extend(ext.object_tools(request, obj))
        extra["page_panels"] = panels
        extra["page_object_tools"] = tools
        return super().change_view(request, object_id, form_url, extra)
