"""allauth adapters: wrong passwords counted per account, two-factor secrets encrypted
at rest.

allauth stores each authenticator app's TOTP secret and the seed of the recovery codes
in the ``mfa_authenticator`` table, in the clear unless its adapter encrypts them. Here
they are sealed with Fernet (AES-128-CBC with an HMAC-SHA256 tag), so that a copy of the
database (a backup, a replica, a leaked dump) does not let anyone generate codes.

The key comes from ``MFA_ENCRYPTION_KEY`` (a comma-separated list: the first key
encrypts, all of them decrypt, which is how a key is rotated). Each entry may be a
Fernet key or any long random string; either way HKDF-SHA256 turns it into the Fernet
key. Unset, the key is derived the same way from ``SECRET_KEY``, which ties the
authenticators to that key: rotating ``SECRET_KEY`` then strands every enrolment, so
production sets ``MFA_ENCRYPTION_KEY``.
"""

import base64
from functools import cache
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Fernet tokens are base64 of a version byte 0x80 and a timestamp: they all start so.
FERNET_TOKEN_PREFIX = "gAAAAA"  # noqa: S105 - a format marker, not a secret
_HKDF_INFO = b"patient-record-portal mfa secrets v1"


def derive_fernet_key(material: str) -> bytes:
    """A Fernet key derived from any secret string with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(derive_fernet_key(key)) for key in keys])


def mfa_fernet() -> MultiFernet:
    keys = tuple(settings.MFA_ENCRYPTION_KEY) or (settings.SECRET_KEY,)
    return _fernet(keys)


def on_the_portal(url: str) -> str:
    """A link allauth built from the request's host, moved to the portal's own address
    (settings.PORTAL_URL): an email never carries the host a request came in on (a
    proxy's internal name, a port, or a Host header an attacker chose)."""
    from accounts.outbox import portal_address

    parts = urlsplit(url)
    if not parts.scheme:
        return url
    return portal_address(parts.path + (f"?{parts.query}" if parts.query else ""))


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account adapter, counting wrong passwords (ACCOUNT_RATE_LIMITS'
    login_failed, per key) against the account alone, and linking emails to the
    portal's own address."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Every link allauth puts in an email's context is named "..._url".
        links = {
            name: on_the_portal(value)
            for name, value in context.items()
            if name.endswith("_url") and isinstance(value, str)
        }
        super().send_mail(template_prefix, email, {**context, **links, "portal_url": on_the_portal("/")})

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # allauth's key is "<site domain>:<login>", and without the sites framework the
        # domain is the request's Host header, port included: every port ("portal:1",
        # "portal:2"...) or host name the portal answers to would start a fresh count.
        login = credentials.get("email", credentials.get("username", "")).lower()
        return f"login:{login}"


class MFAAdapter(DefaultMFAAdapter):
    """allauth's MFA adapter, encrypting authenticator secrets before they are stored."""

    def encrypt(self, text: str) -> str:
        return mfa_fernet().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        if not encrypted_text.startswith(FERNET_TOKEN_PREFIX):
            # Stored before encryption was switched on; it is sealed when next replaced.
            return encrypted_text
        try:
            return mfa_fernet().decrypt(encrypted_text.encode()).decode()
        except InvalidToken:
            raise ImproperlyConfigured(
                "A two-factor secret cannot be decrypted: MFA_ENCRYPTION_KEY (or SECRET_KEY, when "
                "it is unset) is not the key it was stored with. Add the old key after the new one."
            ) from None
