"""Settings for bench/api.py: production's, plus the baseline endpoint's URL (bench/api_urls.py).

The environment is the one production needs (SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL,
EMAIL_URL); bench/api.py sets it, with SECURE_SSL_REDIRECT=false for plain HTTP on 127.0.0.1.
"""

import warnings

from loyalty.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"

# No collectstatic for a benchmark of the API: whitenoise need not say so in every worker.
warnings.filterwarnings("ignore", message="No directory at")
