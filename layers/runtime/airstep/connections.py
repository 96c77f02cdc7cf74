"""Connections and variables, read from AWS Secrets Manager the way Airflow's backend reads them.

Names follow Airflow's Secrets Manager backend: `airflow/connections/<conn_id>` and
`airflow/variables/<key>` (prefixes set by AIRSTEP_CONNECTIONS_PREFIX / AIRSTEP_VARIABLES_PREFIX;
an empty prefix disables that kind). A connection secret is an Airflow connection URI or a JSON
object (detected by a leading `{`). Values are cached across warm invocations (Powertools
Parameters) and missing names are cached too, so lookups do not flood Secrets Manager. Secret
values never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from airstep.errors import AirflowException
from airstep.secrets_masker import is_sensitive, mask_secret

CONNECTIONS_PREFIX_ENV = "AIRSTEP_CONNECTIONS_PREFIX"
VARIABLES_PREFIX_ENV = "AIRSTEP_VARIABLES_PREFIX"
CACHE_SECONDS_ENV = "AIRSTEP_SECRETS_CACHE_SECONDS"
DEFAULT_CONNECTIONS_PREFIX = "airflow/connections"
DEFAULT_VARIABLES_PREFIX = "airflow/variables"
EXTRA_KEY = "__extra__"

# Airflow's Secrets Manager backend accepts these spellings in JSON connection secrets.
_ALIASES = {
    "conn_type": ("conn_type", "conn_id", "connection_type", "engine"),
    "login": ("login", "user", "username", "user_name"),
    "password": ("password", "pass", "key"),
    "host": ("host", "remote_host", "server"),
    "port": ("port",),
    "schema": ("schema", "database"),
    "extra": ("extra",),
}


class AirflowNotFoundException(AirflowException):
    """A connection or variable that is not defined (Airflow's name)."""


class ConnectionFormatError(AirflowException):
    """A connection secret that is neither a valid URI nor valid JSON; names the conn_id, never the value."""


@dataclass(slots=True)
class Connection:
    """An Airflow connection. `Connection.get(conn_id)` reads it from Secrets Manager."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: str | None = field(default=None, repr=False)

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        return secrets().get_connection(conn_id)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """Parse Airflow's connection URI: `type://login:password@host:port/schema?k=v`. A malformed
        URI is an error that names the conn_id and never echoes any part of the secret."""
        try:
            return cls._from_uri(conn_id, uri)
        except ConnectionFormatError:
            raise
        except ValueError:
            raise ConnectionFormatError(f"connection {conn_id!r}: not a valid connection URI") from None

    @classmethod
    def _from_uri(cls, conn_id: str, uri: str) -> Connection:
        if uri.count("://") > 2 or not _URI_SCHEME.match(uri):
            raise ConnectionFormatError(f"connection {conn_id!r}: not a connection URI")
        scheme = urlsplit(uri).scheme
        conn_type = "postgres" if scheme == "postgresql" else scheme.replace("-", "_")
        host_with_protocol = uri.count("://") == 2
        rest = uri.replace(f"{scheme}://", "" if host_with_protocol else "//", 1)
        protocol = None
        if host_with_protocol:
            protocol, _, after = rest.partition("://")
            if "@" in protocol or ":" in protocol:
                raise ConnectionFormatError(f"connection {conn_id!r}: invalid protocol in host")
            rest = "//" + after
        try:
            parts = urlsplit(rest)
            port = parts.port
        except ValueError:
            raise ConnectionFormatError(f"connection {conn_id!r}: invalid host or port") from None
        netloc_host = parts.netloc.rsplit("@", 1)[-1]
        if netloc_host.startswith("["):
            host = netloc_host.split("]", 1)[0] + "]"
        else:
            host = netloc_host.split(":", 1)[0]
        host = unquote(host) or None
        if host and protocol:
            host = f"{protocol}://{host}"
        extra = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            extra = query[EXTRA_KEY] if EXTRA_KEY in query else json.dumps(query)
        return cls(
            conn_id=conn_id,
            conn_type=conn_type or None,
            host=host,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path[1:]) if parts.path[1:] else None,
            port=port,
            extra=extra,
        )

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        """Parse a JSON connection secret, accepting the key spellings Airflow's backend accepts."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ConnectionFormatError(
                f"connection {conn_id!r}: secret starts with '{{' but is not valid JSON"
            ) from None
        if not isinstance(data, dict):
            raise ConnectionFormatError(f"connection {conn_id!r}: JSON secret must be an object")
        fields: dict[str, Any] = {}
        for name, spellings in _ALIASES.items():
            for spelling in spellings:
                if spelling in data:
                    fields[name] = data[spelling]
                    break
        extra = fields.get("extra")
        if isinstance(extra, dict):
            fields["extra"] = json.dumps(extra)
        elif isinstance(extra, str):
            try:
                json.loads(extra)
            except ValueError:
                raise ConnectionFormatError(f"connection {conn_id!r}: 'extra' must be JSON") from None
        elif extra is not None:
            raise ConnectionFormatError(f"connection {conn_id!r}: 'extra' must be a JSON object")
        if fields.get("port") not in (None, ""):
            try:
                fields["port"] = int(fields["port"])
            except (TypeError, ValueError):
                raise ConnectionFormatError(f"connection {conn_id!r}: port must be a number") from None
        else:
            fields.pop("port", None)
        if isinstance(fields.get("conn_type"), str):
            fields["conn_type"] = fields["conn_type"].replace("-", "_")
        return cls(conn_id=conn_id, **fields)

    def get_uri(self) -> str:
        """The connection as an Airflow URI (the inverse of `from_uri`)."""
        uri = f"{(self.conn_type or '').replace('_', '-')}://"
        host = self.host or ""
        if "://" in host:
            protocol, host = host.split("://", 1)
            uri += f"{protocol}://"
        if self.login or self.password:
            uri += quote(self.login or "", safe="")
            if self.password:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        uri += quote(host, safe="")
        if self.port:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        if self.extra:
            extra = self.extra_dejson
            if extra and all(isinstance(v, str) for v in extra.values()):
                uri += "?" + urlencode(extra)
            else:
                uri += "?" + urlencode({EXTRA_KEY: self.extra})
        return uri


_UNSET: Any = object()
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _mask_connection(conn: Connection) -> Connection:
    """Register a connection's secrets with the masker (Airflow masks the password and sensitive extras)."""
    if conn.password:
        mask_secret(conn.password)
    mask_secret(conn.extra_dejson)
    return conn


def _mask_variable(key: str, value: Any) -> None:
    """Register a variable's secrets: all of it under a sensitive key, else its sensitive fields."""
    if is_sensitive(key):
        mask_secret(_leaves(value) if not isinstance(value, str) else value)
    elif isinstance(value, (dict, list)):
        mask_secret(value)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


class Variable:
    """Airflow's Variable: `Variable.get(key, default_var=..., deserialize_json=False)`."""

    @staticmethod
    def get(key: str, default_var: Any = _UNSET, deserialize_json: bool = False, *, default: Any = _UNSET) -> Any:
        fallback = default if default is not _UNSET else default_var
        value = secrets().get_variable(key)
        if value is None:
            if fallback is _UNSET:
                raise KeyError(f"Variable {key} does not exist")
            return fallback
        _mask_variable(key, value)
        if deserialize_json:
            try:
                parsed = json.loads(value)
            except ValueError:
                raise ValueError(f"Variable {key} is not valid JSON") from None
            _mask_variable(key, parsed)
            return parsed
        return value


class BaseHook:
    """The part of Airflow's BaseHook that DAG code calls."""

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)


class SecretsBackend:
    """Reads connections and variables from Secrets Manager, with a cache that also remembers misses."""

    def __init__(
        self,
        *,
        connections_prefix: str | None = None,
        variables_prefix: str | None = None,
        cache_seconds: float | None = None,
        client: Any = None,
    ) -> None:
        self.connections_prefix = _prefix(connections_prefix, CONNECTIONS_PREFIX_ENV, DEFAULT_CONNECTIONS_PREFIX)
        self.variables_prefix = _prefix(variables_prefix, VARIABLES_PREFIX_ENV, DEFAULT_VARIABLES_PREFIX)
        self.cache_seconds = float(
            cache_seconds if cache_seconds is not None else os.environ.get(CACHE_SECONDS_ENV, "300")
        )
        self._client = client
        self._provider: Any = None
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_connection(self, conn_id: str) -> Connection:
        if self.connections_prefix is None:
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined (connections are disabled)")
        value = self._read(f"{self.connections_prefix}/{conn_id}")
        if value is None:
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        if value.lstrip().startswith("{"):
            return _mask_connection(Connection.from_json(conn_id, value))
        return _mask_connection(Connection.from_uri(conn_id, value.strip()))

    def get_variable(self, key: str) -> str | None:
        if self.variables_prefix is None:
            return None
        return self._read(f"{self.variables_prefix}/{key}")

    def _read(self, name: str) -> str | None:
        """Hits are cached by Powertools Parameters; misses here, so absent names are not re-asked."""
        now = time.monotonic()
        with self._lock:
            if self._misses.get(name, 0.0) > now:
                return None
        value = self._fetch(name)
        if value is None:
            with self._lock:
                self._misses[name] = now + self.cache_seconds
        return value

    def _fetch(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.exceptions import ClientError

        if self._provider is None:
            from airstep.runtime.clients import client

            self._provider = SecretsProvider(boto3_client=self._client or client("secretsmanager"))
        try:
            value = self._provider.get(name, max_age=int(self.cache_seconds))
        except GetParameterError as exc:
            cause = exc.__context__
            code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None
            if code == "ResourceNotFoundException":
                return None
            raise AirflowException(f"cannot read secret {name!r}: {code or type(cause).__name__}") from None
        return value.decode("utf-8") if isinstance(value, bytes) else value


def _prefix(explicit: str | None, env: str, default: str) -> str | None:
    value = explicit if explicit is not None else os.environ.get(env, default)
    value = value.strip().rstrip("/")
    return value or None


def secrets() -> SecretsBackend:
    """The process-wide backend (warm Lambda invocations share its cache)."""
    from airstep.runtime.clients import registry

    return registry.get("secrets", SecretsBackend)
