"""API tokens of people the directory signs in: before a token is honoured,
the directory is asked again (at most every ``DIRECTORY_REFRESH_SECONDS``),
so a person removed from a group loses what it gave at their next token use,
and a person the directory no longer knows loses their tokens."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from accounts import oidc
from accounts.directory import DirectoryIdentity, end_access, sync_user
from accounts.models import ApiToken, DirectoryAccount, User
from accounts.services import token_authenticate

# A second request of the same user while the first asks the directory uses
# what is stored rather than asking twice (a provider may rotate the refresh
# token, and a second use of the old one revokes the grant).
LOCK_SECONDS = 30


def authenticate_token(plaintext: str) -> ApiToken | None:
    """The usable token with this plaintext, as ``token_authenticate``, whose
    user the directory (if one signs them in, and its check is due) still
    knows. Raises ``DirectoryUnavailable`` when that cannot be confirmed."""
    token = token_authenticate(plaintext)
    if token is None or not token.directory_check_due or still_known(token.user):
        return token
    return None


def still_known(user: User) -> bool:
    """Ask the directory about a user whose check is due: their groups follow
    its answer, and False means it no longer knows them."""
    account = DirectoryAccount.objects.get(user=user)
    lock = f"archivist:directory-check:{user.pk}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        return account.active
    try:
        identity, asked = _ask(account, user)
    finally:
        cache.delete(lock)
    if not asked:
        return account.active
    if identity is None:
        end_access(user, reason=f"{account.source}: unknown to the directory")
        return False
    sync_user(user, identity)
    return True


def _ask(
    account: DirectoryAccount, user: User
) -> tuple[DirectoryIdentity | None, bool]:
    """What the directory says now, and whether it could be asked at all
    (an OpenID provider that gave no refresh token cannot be)."""
    if account.source == DirectoryAccount.Source.LDAP:
        if not settings.LDAP_SERVER_URI:
            return None, False
        from accounts.ldap_backend import DirectoryLDAPBackend

        return DirectoryLDAPBackend().lookup(user.get_username()), True
    if not oidc.can_refresh(account):
        return None, False
    return oidc.refresh(account), True
