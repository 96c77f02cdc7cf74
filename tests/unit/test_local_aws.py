"""The local engine's moto plumbing: the interpreter imports without moto's EC2, and Batch still works."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from airstep_local.aws import import_interpreter
import_interpreter()
assert "moto.stepfunctions.parser.asl.parse.asl_parser" in sys.modules
assert "moto.ec2" not in sys.modules, "the interpreter pulled in moto's EC2 backend"
assert "moto.batch" not in sys.modules
import moto.batch  # a later Batch call gets the real package
assert hasattr(moto.batch, "batch_backends")
print("ok")
"""


def test_interpreter_imports_without_ec2_and_batch_still_imports():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_attribute_values_passed_through_read_back_exactly_as_moto_serialises_them():
    import boto3
    from moto import mock_aws

    from airstep_local.aws import pass_through_attribute_values

    item = {
        "pk": {"S": "p"},
        "sk": {"S": "s"},
        "n": {"N": "12.5"},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "names": {"SS": ["a", "b"]},
        "nums": {"NS": ["1", "2"]},
        "doc": {"M": {"inner": {"L": [{"S": "x"}, {"N": "3"}, {"M": {"deep": {"BOOL": True}}}]}}},
        "blob": {"B": b"\x00\x01binary"},
        "mixed": {"L": [{"S": "y"}, {"B": b"\xff"}]},
    }
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item=item)

        def read() -> tuple[object, object]:
            got = client.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "s"}})["Item"]
            listed = client.query(
                TableName="t",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p"}},
            )["Items"]
            return got, listed

        walked = read()
        restore = pass_through_attribute_values()
        try:
            passed = read()
        finally:
            restore()
    assert passed == walked
    assert walked[0] == item


def test_s3_url_module_loaded_once_gives_the_same_answers(monkeypatch):
    import boto3
    import moto.s3.models
    from moto import mock_aws

    from airstep_local.aws import load_s3_urls_once

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket-one")
        s3.put_object(Bucket="bucket-one", Key="k", Body=b"v")
        reloaded = (
            s3.get_object(Bucket="bucket-one", Key="k")["Body"].read(),
            s3.list_objects_v2(Bucket="bucket-one")["KeyCount"],
        )
        restore = load_s3_urls_once()
        reloads: list[object] = []
        monkeypatch.setattr(moto.s3.models, "reload", lambda module: reloads.append(module) or module)
        try:
            once = (
                s3.get_object(Bucket="bucket-one", Key="k")["Body"].read(),
                s3.list_objects_v2(Bucket="bucket-one")["KeyCount"],
            )
        finally:
            restore()
    assert once == reloaded == (b"v", 1)
    assert reloads == []


def test_a_path_of_literal_indexes_reads_the_one_value_it_names_as_aws_does():
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    from airstep_local.aws import index_paths_as_aws_does

    data = {"r": {"Contents": [{"Key": "a"}, {"Key": "b"}], "Tags": [{"Name": "x", "Value": "y"}]}}
    restore = index_paths_as_aws_does()
    try:
        assert extract_json("$.r.Contents[0].Key", data) == "a"  # moto alone: ["a"]
        assert extract_json("$.r.Contents[1]", data) == {"Key": "b"}
        assert extract_json("$.r.Contents[*].Key", data) == ["a", "b"]  # a wildcard is still a list
        assert extract_json("$.r.Tags[?(@.Name == 'x')].Value", data) == ["y"]  # ... and a filter (moto #7825)
    finally:
        restore()
    assert extract_json("$.r.Contents[0].Key", data) == ["a"]
