"""Demo-only helpers. Nothing here is reachable with DEBUG off."""

# The authenticator secret the demo staff accounts share (base32). Add it to any
# authenticator app, or print the current code with `python manage.py demo_totp`.
DEMO_TOTP_SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"  # noqa: S105 - demo data, DEBUG only
