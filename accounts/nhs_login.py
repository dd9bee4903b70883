"""NHS login through allauth's OpenID Connect provider: the seam.

Loaded only when NHS_LOGIN_* settings switch the provider on (allauth.socialaccount is
not installed otherwise, so nothing else may import this module). A sign-in with an
identity verified to P9 links the account to the record with that NHS number; the rule
itself lives in accounts.linking so that it is tested without the provider.
"""

from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

from .client_address import client_address
from .linking import link_from_nhs_login


def claims_of(sociallogin) -> dict:
    """The ID token's claims, with the userinfo endpoint's on top (allauth keeps both)."""
    data = sociallogin.account.extra_data or {}
    if "id_token" in data or "userinfo" in data:
        return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}
    return dict(data)


class NHSLoginAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request, sociallogin):
        super().pre_social_login(request, sociallogin)
        if sociallogin.is_existing:
            link_from_nhs_login(
                user=sociallogin.user, claims=claims_of(sociallogin), source_address=client_address(request)
            )

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        link_from_nhs_login(user=user, claims=claims_of(sociallogin), source_address=client_address(request))
        return user
