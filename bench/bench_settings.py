"""porapp's settings with the benchmark's URLs (a bare view beside the site's)."""

from porapp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
