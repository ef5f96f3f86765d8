import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("loyalty", "0007_purchase_import"),
    ]

    operations = [
        migrations.AddField(
            model_name="partner",
            name="api_requests_per_minute",
            field=models.PositiveIntegerField(
                default=1200,
                help_text="Per API key; more get HTTP 429 with Retry-After.",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="API requests per minute",
            ),
        ),
    ]
