"""`prediction-log migrate` and `prediction-log roles`: the owner's two jobs on the prediction log.

`migrate` creates or updates the schema (serving/prediction_log.py, MIGRATIONS); nothing else ever
does. `roles` makes one login role per user of the log (the server, `score`, `monitor`,
`import-labels`) with the grants prediction_log.PRIVILEGES lists and nothing more; it prints the SQL,
or applies it with `--apply`. Both run with the owner's URL (the user that owns the table and may
create roles), never with a URL a workflow holds.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from ...errors import UsageError
from ...serving import prediction_log

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")
DEFAULT_PREFIX = "{{ cookiecutter.package_name }}_log"


def role_names(prefix: str) -> dict[str, str]:
    """user of the log (server, scorer, monitor, labeller) -> its role name, `<prefix>_<user>`."""
    if not ROLE_NAME.fullmatch(prefix):
        raise UsageError(f"--prefix {prefix!r}: use lower-case letters, digits and _ (a PostgreSQL role name)")
    return {user: f"{prefix}_{user}" for user in prediction_log.PRIVILEGES}


def roles_sql(prefix: str) -> list[str]:
    """The statements that make each role exactly what PRIVILEGES says: re-running resets a role's
    grants on the log to these (a grant added by hand is revoked), and changes nothing else."""
    table, versions = prediction_log.TABLE, prediction_log.VERSIONS
    statements = [f"REVOKE ALL ON {table}, {versions} FROM PUBLIC"]
    for user, role in role_names(prefix).items():
        statements += [
            # CREATE ROLE has no IF NOT EXISTS; the role's attributes are set either way.
            f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
            # On a table, REVOKE ALL takes the column grants with it.
            f"REVOKE ALL ON {table}, {versions} FROM {role}",
            f"GRANT SELECT ON {versions} TO {role}",
        ]
        for privilege, columns in prediction_log.PRIVILEGES[user].items():
            statements.append(f"GRANT {privilege} ({', '.join(columns)}) ON {table} TO {role}")
    return statements


def role_url(owner_url: str, role: str, password: str) -> str:
    """The owner's URL with the role's name and password in place of the owner's."""
    parts = urlsplit(owner_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{quote(password, safe='')}@{netloc}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("migrate", "roles"),
        help="migrate: create or update the schema; roles: the SQL that makes the four roles (--apply runs it)",
    )
    parser.add_argument("--url", help=f"the owner's PostgreSQL URL (default ${prediction_log.DATABASE_URL_ENV})")
    parser.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help=f"role names are <prefix>_server, ... (default {DEFAULT_PREFIX})"
    )
    parser.add_argument("--apply", action="store_true", help="roles: run the SQL instead of printing it")
    parser.add_argument(
        "--urls-file",
        type=Path,
        help="roles --apply: also give each role a new random password and write its URL here "
        "(PREDICTION_LOG_URL_<ROLE>=..., mode 0600; refused if the file exists)",
    )


def run(args: argparse.Namespace) -> None:
    if args.action == "roles" and not args.apply:
        if args.urls_file:
            raise UsageError("--urls-file needs --apply: passwords are set on the database")
        print(";\n".join(roles_sql(args.prefix)) + ";")
        return
    url = args.url or os.environ.get(prediction_log.DATABASE_URL_ENV, "")
    if not url:
        raise UsageError(f"no owner URL: pass --url or set {prediction_log.DATABASE_URL_ENV}")
    if args.action == "migrate":
        migrate(url)
    else:
        apply_roles(url, args.prefix, args.urls_file)


def _owner_connection(url: str) -> psycopg.Connection:
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("--url: expected a PostgreSQL URL, postgresql://owner@host:5432/db")
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise UsageError(f"cannot connect with the owner's URL: {str(error).strip()}") from error


def migrate(url: str) -> None:
    import psycopg

    with _owner_connection(url) as connection:
        try:
            applied = prediction_log.migrate(connection)
        except psycopg.errors.InsufficientPrivilege as error:
            raise UsageError(
                f"migrate: {str(error).strip()}: run it with the URL of the user that owns the log "
                "(and may create tables in its schema), not a role's"
            ) from error
    if applied:
        log.info("prediction log: applied migration(s) %s; schema version %d", applied, prediction_log.SCHEMA_VERSION)
    else:
        log.info("prediction log: schema already at version %d; nothing to do", prediction_log.SCHEMA_VERSION)


def apply_roles(url: str, prefix: str, urls_file: Path | None) -> None:
    import psycopg
    from psycopg import sql

    if urls_file is not None and urls_file.exists():
        raise UsageError(f"--urls-file {urls_file}: exists; give a new file (it will hold passwords)")
    passwords = {role: secrets.token_urlsafe(24) for role in role_names(prefix).values()} if urls_file else {}
    with _owner_connection(url) as connection:
        if prediction_log.schema_version(connection) < prediction_log.SCHEMA_VERSION:
            raise UsageError(f"roles: the log's schema is not there yet: {prediction_log.MIGRATE_HINT}")
        try:
            with connection.transaction():
                for statement in roles_sql(prefix):
                    connection.execute(statement)
                for role, password in passwords.items():
                    # A literal, not a parameter: ALTER ROLE takes no bind parameters.
                    literal = sql.Literal(password).as_string(connection)
                    connection.execute(f"ALTER ROLE {role} PASSWORD {literal}")
        except psycopg.errors.InsufficientPrivilege as error:
            raise UsageError(
                f"roles: {str(error).strip()}: run it as the log's owner with the right to create roles (CREATEROLE)"
            ) from error
    log.info("prediction log: roles %s granted exactly their part", ", ".join(role_names(prefix).values()))
    if urls_file is not None:
        lines = [
            f"PREDICTION_LOG_URL_{user.upper()}={role_url(url, role, passwords[role])}"
            for user, role in role_names(prefix).items()
        ]
        descriptor = os.open(urls_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("\n".join(lines) + "\n")
        log.info("each role's URL is in %s: put each in its GitHub environment, then delete the file", urls_file)


COMMANDS = {
    "prediction-log": (
        "the prediction log's owner: migrate (create or update the schema), roles (the four limited users)",
        add_arguments,
        run,
    )
}
