from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = _("Segmentation")

    def ready(self) -> None:
        from members import privacy

        def export_segments(member) -> dict | None:
            from .models import MemberScore
            from .selectors import member_current_score, member_rule_segments

            score = member_current_score(member=member)
            if score is None:
                return None
            # Every snapshot kept, not only the current one: the program holds them all.
            history = (
                MemberScore.objects.filter(member=member)
                .select_related("run")
                .order_by("run__started_at", "run_id")
            )
            return {
                "calculated_at": score.run.started_at,
                "segment": score.segment,
                "quadrant": score.quadrant,
                "rfm": score.rfm_cell,
                "customer_lifetime_value_eur": score.clv,
                "probability_active": score.p_alive,
                "rule_segments": [segment.name for segment in member_rule_segments(member=member)],
                "runs": [
                    {
                        "calculated_at": row.run.started_at,
                        "recency_days": row.recency_days,
                        "frequency": row.frequency,
                        "monetary_eur": row.monetary,
                        "segment": row.segment,
                        "quadrant": row.quadrant,
                        "rfm": row.rfm_cell,
                        "expected_purchases": row.expected_purchases,
                        "customer_lifetime_value_eur": row.clv,
                        "probability_active": row.p_alive,
                    }
                    for row in history
                ],
            }

        privacy.register_exporter("segments", export_segments)
        self._register_admin_parts()

    @staticmethod
    def _register_admin_parts() -> None:
        """The member page's scores panel and the dashboard's link on the admin index."""
        from django.contrib import admin as django_admin

        from loyalty.admin_site import admin_extensions
        from members.models import Member

        from . import admin

        admin_extensions.register(
            Member,
            page_part=admin.member_scores_context,
            panel_template="admin/segmentation/member_scores.html",
        )
        django_admin.site.register_index_link(
            url_name="segmentation_dashboard",
            title=_("Segments and customer value"),
            description=_(
                "RFM segments, the loyalty x profitability matrix, CLV and movement between runs"
            ),
            permission="segmentation.view_memberscore",
        )
