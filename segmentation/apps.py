from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = _("Segmentation")

    def ready(self) -> None:
        from members import privacy

        def export_segments(member) -> dict | None:
            from .selectors import member_current_score

            score = member_current_score(member=member)
            if score is None:
                return None
            return {
                "calculated_at": score.run.started_at,
                "segment": score.segment,
                "quadrant": score.quadrant,
                "rfm": score.rfm_cell,
                "customer_lifetime_value_eur": score.clv,
                "probability_active": score.p_alive,
            }

        privacy.register_exporter("segments", export_segments)
