"""Company sign-in settings, read from the environment by config.settings.

OpenID Connect needs the issuer and the client; LDAP needs the server and
where people and groups are. django-auth-ldap's ``AUTH_LDAP_*`` settings are
built here so the environment stays a short list of plain names
(docs/configuration.md, "Company sign-in").
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_float, env_optional_str, env_str

# LDAP_GROUP_TYPE -> (django-auth-ldap group type, the filter that finds groups)
GROUP_TYPES = {
    "groupOfNames": ("GroupOfNamesType", "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": (
        "GroupOfUniqueNamesType",
        "(objectClass=groupOfUniqueNames)",
    ),
    "posixGroup": ("PosixGroupType", "(objectClass=posixGroup)"),
    "activeDirectory": ("NestedActiveDirectoryGroupType", "(objectClass=group)"),
}


def group_map() -> dict[str, list[str]]:
    """``DIRECTORY_GROUP_MAP``: a JSON object from a directory group's name
    to one Archivist group name or a list of them."""
    raw = env_optional_str("DIRECTORY_GROUP_MAP")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"DIRECTORY_GROUP_MAP is not valid JSON ({exc}). Example: "
            '{"hr": "HR readers", "eng": ["Engineering", "Staff"]}'
        ) from exc
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured("DIRECTORY_GROUP_MAP must be a JSON object.")
    mapping: dict[str, list[str]] = {}
    for source, targets in parsed.items():
        names = [targets] if isinstance(targets, str) else targets
        if not isinstance(names, list) or not all(
            isinstance(name, str) and name for name in names
        ):
            raise ImproperlyConfigured(
                f"DIRECTORY_GROUP_MAP[{source!r}] must be a group name or a list of them."
            )
        mapping[str(source)] = names
    return mapping


def check_oidc(issuer: str, client_id: str, client_secret: str) -> None:
    if issuer and not (client_id and client_secret):
        raise ImproperlyConfigured(
            "OIDC_ISSUER is set, so OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be "
            "set too (from the client registered at the provider)."
        )


def ldap_settings(uri: str) -> dict[str, Any]:
    """django-auth-ldap's ``AUTH_LDAP_*`` settings for the server at ``uri``."""
    import ldap
    from django_auth_ldap import config as ldap_config

    group_type = env_str("LDAP_GROUP_TYPE", "groupOfNames")
    if group_type not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE must be one of {', '.join(GROUP_TYPES)}, not {group_type!r}."
        )
    type_name, group_filter = GROUP_TYPES[group_type]
    user_base = env_str("LDAP_USER_SEARCH_BASE", "")
    group_base = env_str("LDAP_GROUP_SEARCH_BASE", user_base)
    if not user_base:
        raise ImproperlyConfigured(
            "LDAP_SERVER_URI is set, so LDAP_USER_SEARCH_BASE must be set too "
            "(for example ou=people,dc=example,dc=org)."
        )
    timeout = env_float("LDAP_TIMEOUT", 5.0)
    global_options: dict[int, Any] = {}
    ca_file = env_optional_str("LDAP_CA_CERT_FILE")
    if ca_file:
        global_options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_START_TLS": env_bool("LDAP_START_TLS", False),
        "AUTH_LDAP_GLOBAL_OPTIONS": global_options,
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: timeout,
            ldap.OPT_TIMEOUT: timeout,
            ldap.OPT_REFERRALS: 0,
        },
        "AUTH_LDAP_BIND_DN": env_str("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env_str("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_USER_SEARCH": ldap_config.LDAPSearch(
            user_base,
            ldap.SCOPE_SUBTREE,
            env_str("LDAP_USER_FILTER", "(uid=%(user)s)"),
        ),
        "AUTH_LDAP_GROUP_SEARCH": ldap_config.LDAPSearch(
            group_base, ldap.SCOPE_SUBTREE, group_filter
        ),
        "AUTH_LDAP_GROUP_TYPE": getattr(ldap_config, type_name)(),
        "AUTH_LDAP_USER_ATTR_MAP": {
            "first_name": env_str("LDAP_ATTR_FIRST_NAME", "givenName"),
            "last_name": env_str("LDAP_ATTR_LAST_NAME", "sn"),
            "email": env_str("LDAP_ATTR_EMAIL", "mail"),
        },
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
    }
