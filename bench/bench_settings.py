"""The portal's production settings with one more URL: the bench's bare view (bench/api.py).

Both the API and the bare view are served with these settings, so both pass through the
same Django request handling and middleware; only the token, policy and audit differ.
"""

from config.settings import *  # noqa: F403 - the portal's settings, unchanged

ROOT_URLCONF = "bench.bench_urls"
