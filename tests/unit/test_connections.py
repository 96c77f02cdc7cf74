"""Connections and variables: Airflow's URI and JSON formats, caching, and no secret in any message."""

import json

import boto3
import pytest
from moto import mock_aws

from airstep.connections import (
    AirflowNotFoundException,
    Connection,
    ConnectionFormatError,
    SecretsBackend,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "postgresql://user%40corp:p%40ss%2Fw0rd@db.example.com:5432/analytics",
            ("postgres", "db.example.com", "user@corp", "p@ss/w0rd", "analytics", 5432, None),
        ),
        ("my-conn-type://h", ("my_conn_type", "h", None, None, None, None, None)),
        (
            "aws://?region_name=eu-west-1&role_arn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx",
            ("aws", None, None, None, None, None, {"region_name": "eu-west-1", "role_arn": "arn:aws:iam::1:role/x"}),
        ),
        (
            "http://https://api.example.com:8443/v1?__extra__=%7B%22timeout%22%3A+5%2C+%22nested%22%3A+%7B%22a%22%3A+1%7D%7D",
            ("http", "https://api.example.com", None, None, "v1", 8443, {"timeout": 5, "nested": {"a": 1}}),
        ),
    ],
)
def test_uri_parsing_matches_airflow(uri, expected):
    conn = Connection.from_uri("c", uri)
    got = (conn.conn_type, conn.host, conn.login, conn.password, conn.schema, conn.port, conn.extra_dejson or None)
    assert got == expected


def test_uri_round_trip():
    conn = Connection.from_uri("c", "mysql://us%20er:pa%3Ass@host.local:3306/db?charset=utf8")
    assert Connection.from_uri("c", conn.get_uri()) == conn


def test_json_secret_accepts_airflow_aliases():
    text = json.dumps(
        {
            "engine": "postgres",
            "user": "u",
            "pass": "pw",
            "server": "h",
            "database": "d",
            "port": "6543",
            "extra": {"sslmode": "require"},
        }
    )
    conn = Connection.from_json("db", text)
    assert (conn.conn_type, conn.login, conn.password, conn.host, conn.schema, conn.port) == (
        "postgres",
        "u",
        "pw",
        "h",
        "d",
        6543,
    )
    assert conn.extra_dejson == {"sslmode": "require"}


def test_secrets_never_appear_in_repr_or_errors():
    conn = Connection.from_uri("db", "postgres://admin:hunter2@h/d")
    assert "hunter2" not in repr(conn)
    with pytest.raises(ConnectionFormatError) as info:
        Connection.from_json("db", '{"password": "hunter2", "extra": "not json hunter2"}')
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConnectionFormatError) as info:
        Connection.from_uri("db", "postgres://admin:hunter2@h:notaport/d")
    assert "hunter2" not in str(info.value)


class CountingClient:
    def __init__(self, client):
        self.client = client
        self.calls = 0

    def get_secret_value(self, **kwargs):
        self.calls += 1
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def backend():
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="airflow/connections/db", SecretString="postgres://u:pw@h:5432/d")
        client.create_secret(Name="airflow/variables/config", SecretString='{"batch": 100}')
        counting = CountingClient(client)
        yield SecretsBackend(client=counting), counting


def test_backend_reads_and_caches_hits_and_misses(backend):
    secrets, client = backend
    assert secrets.get_connection("db").port == 5432
    assert secrets.get_connection("db").password == "pw"
    assert secrets.get_variable("config") == '{"batch": 100}'
    assert secrets.get_variable("absent") is None
    assert secrets.get_variable("absent") is None
    assert client.calls == 3
    with pytest.raises(AirflowNotFoundException, match="isn't defined"):
        secrets.get_connection("nope")


def test_prefixes_are_configurable_and_can_disable(backend):
    _, client = backend
    disabled = SecretsBackend(client=client, variables_prefix="", connections_prefix="other/place")
    assert disabled.get_variable("config") is None
    with pytest.raises(AirflowNotFoundException):
        disabled.get_connection("db")


@pytest.mark.parametrize(
    "uri", ["post gres://etl:s3cr3t-pw@host/db", "postgresql://etl:s3cr3t-pw@[::1/db", "pg://etl:s3cr3t-pw@h:x/db"]
)
def test_a_malformed_uri_is_refused_without_echoing_it(uri):
    with pytest.raises(ConnectionFormatError) as info:
        Connection.from_uri("warehouse", uri)
    assert "warehouse" in str(info.value) and "s3cr3t" not in str(info.value)
