"""Demo-only helpers. Nothing here is reachable with DEBUG off."""

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time

# The authenticator secret the demo staff accounts share (base32). Add it to any
# authenticator app, or print the current code with `python manage.py demo_totp`.
DEMO_TOTP_SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"  # noqa: S105 - demo data, DEBUG only


def current_code(secret: str = DEMO_TOTP_SECRET) -> str:
    """The authenticator code for the middle of the window the server accepts now."""
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))
