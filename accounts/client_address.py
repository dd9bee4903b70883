"""Where a request comes from: the one answer every rate limit and audit event uses.

config.middleware.ClientAddressMiddleware has already put the client's address in
REMOTE_ADDR, taken from the trusted proxies' X-Forwarded-For when TRUSTED_PROXIES says
there are any, so allauth's sign-in limits, the linkage-key and passcode limits and the
audit trail all count and record the same address. It lives here, in accounts, so that
every layer that needs it (accounts' own signal receivers included) can reach it.
"""


def client_address(request) -> str | None:
    """The client's address as the portal counts and records it; None without a request."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None
