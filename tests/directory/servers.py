"""The real directory servers the sign-in tests run against: Debian's slapd
(OpenLDAP) and panva's oidc-provider under Node, each in a temporary folder
on a free loopback port, as the harness does for PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

import ldap
import ldap.modlist

from config.processes import free_port

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=archivist,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
USER_FILTER = "(&(uid=%(user)s)(!(employeeType=disabled)))"
PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"


def _wait(check: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        try:
            check()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start in 30 s: {log.read_text()[-2000:]}")


SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {folder}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


class Slapd:
    """OpenLDAP with people (uid=…, ou=people) and groupOfNames groups
    (cn=…, ou=groups); a person with ``employeeType: disabled`` is one
    USER_FILTER does not find."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.folder / "data").mkdir(parents=True)
        conf = self.folder / "slapd.conf"
        conf.write_text(
            SLAPD_CONF.format(
                folder=self.folder,
                suffix=SUFFIX,
                root_dn=ROOT_DN,
                root_password=ROOT_PASSWORD,
            )
        )
        seed = self.folder / "seed.ldif"
        seed.write_text(_seed_ldif())
        subprocess.run(
            ["/usr/sbin/slapadd", "-f", str(conf), "-l", str(seed)],
            check=True,
            capture_output=True,
        )
        log = self.folder / "slapd.log"
        self.process = subprocess.Popen(
            ["/usr/sbin/slapd", "-d", "0", "-f", str(conf), "-h", f"{self.uri}/"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: self.connect().unbind_s(), "slapd", self.process, log)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def connect(self) -> Any:
        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return connection

    def add_person(self, uid: str, password: str, *, disabled: bool = False) -> None:
        attrs: dict[str, list[bytes]] = {
            "objectClass": [b"inetOrgPerson"],
            "uid": [uid.encode()],
            "cn": [uid.title().encode()],
            "sn": [b"Tester"],
            "givenName": [uid.title().encode()],
            "mail": [f"{uid}@example.org".encode()],
            "userPassword": [password.encode()],
        }
        if disabled:
            attrs["employeeType"] = [b"disabled"]
        self._apply(
            lambda c: c.add_s(f"uid={uid},{PEOPLE}", ldap.modlist.addModlist(attrs))
        )

    def set_disabled(self, uid: str, disabled: bool) -> None:
        change = (
            ldap.MOD_REPLACE,
            "employeeType",
            [b"disabled"] if disabled else [b"active"],
        )
        self._apply(lambda c: c.modify_s(f"uid={uid},{PEOPLE}", [change]))

    def add_to_group(self, group: str, uid: str) -> None:
        member = f"uid={uid},{PEOPLE}".encode()
        dn = f"cn={group},{GROUPS}"
        try:
            self._apply(lambda c: c.modify_s(dn, [(ldap.MOD_ADD, "member", [member])]))
        except ldap.NO_SUCH_OBJECT:
            # groupOfNames needs a member; the service account keeps an
            # emptied group valid, as directories commonly do.
            attrs = {
                "objectClass": [b"groupOfNames"],
                "cn": [group.encode()],
                "member": [SERVICE_DN.encode(), member],
            }
            self._apply(lambda c: c.add_s(dn, ldap.modlist.addModlist(attrs)))

    def remove_from_group(self, group: str, uid: str) -> None:
        member = f"uid={uid},{PEOPLE}".encode()
        dn = f"cn={group},{GROUPS}"
        self._apply(lambda c: c.modify_s(dn, [(ldap.MOD_DELETE, "member", [member])]))

    def _apply(self, change: Any) -> None:
        connection = self.connect()
        try:
            change(connection)
        finally:
            connection.unbind_s()

    def django_settings(self) -> dict[str, Any]:
        from config.directory import ldap_settings

        values = {
            "LDAP_USER_SEARCH_BASE": PEOPLE,
            "LDAP_GROUP_SEARCH_BASE": GROUPS,
            "LDAP_USER_FILTER": USER_FILTER,
            "LDAP_BIND_DN": SERVICE_DN,
            "LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "LDAP_TIMEOUT": "3",
        }
        with mock.patch.dict(os.environ, values):
            return {"LDAP_SERVER_URI": self.uri, **ldap_settings(self.uri)}


def _seed_ldif() -> str:
    return f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: archivist
userPassword: {SERVICE_PASSWORD}
"""


class OidcProvider:
    """panva's oidc-provider with one client; people, their passwords and
    groups live in a JSON file the provider reads at every use."""

    CLIENT_ID = "archivist"
    CLIENT_SECRET = "archivist-client-secret"

    def __init__(
        self, folder: Path, redirect_uris: list[str], logout_uris: list[str]
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.users_file = folder / "users.json"
        self.redirect_uris = redirect_uris
        self.logout_uris = logout_uris
        self.process: subprocess.Popen[bytes] | None = None
        self.people: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("Node.js and npm are needed for the OpenID Provider.")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=PROVIDER_DIR,
                check=True,
                capture_output=True,
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write()
        # Once, under a loaded suite, Node sat for 30 s without listening;
        # a second start on a fresh port is cheap and says more than a skip.
        for attempt in (1, 2):
            try:
                self._launch(npm, attempt)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
                self.port = free_port()
                self.issuer = f"http://127.0.0.1:{self.port}"

    def _launch(self, npm: str, attempt: int) -> None:
        log = self.folder / f"provider-{attempt}.log"
        env = {
            "PATH": str(Path(npm).parent),
            "PORT": str(self.port),
            "USERS_FILE": str(self.users_file),
            "CLIENT_ID": self.CLIENT_ID,
            "CLIENT_SECRET": self.CLIENT_SECRET,
            "REDIRECT_URIS": ",".join(self.redirect_uris),
            "POST_LOGOUT_REDIRECT_URIS": ",".join(self.logout_uris),
        }
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", "server.mjs"],
            cwd=PROVIDER_DIR,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        _wait(
            lambda: urllib.request.urlopen(discovery, timeout=2).read(),  # noqa: S310 - loopback
            "oidc-provider",
            self.process,
            log,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def add_person(
        self, username: str, password: str, groups: list[str], **extra: Any
    ) -> None:
        self.people[username] = {
            "password": password,
            "email": f"{username}@example.org",
            "given_name": username.title(),
            "family_name": "Tester",
            "groups": groups,
            **extra,
        }
        self._write()

    def update(self, username: str, **changes: Any) -> None:
        self.people[username].update(changes)
        self._write()

    def _write(self) -> None:
        self.users_file.write_text(json.dumps(self.people))

    def django_settings(self) -> dict[str, Any]:
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.CLIENT_ID,
            "OIDC_CLIENT_SECRET": self.CLIENT_SECRET,
            "OIDC_PROVIDER_NAME": "Test IdP",
            "OIDC_SCOPES": "openid email profile groups",
        }
