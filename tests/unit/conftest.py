"""Fixtures of the unit tests."""

import json

import boto3
import pytest
from moto import mock_aws

from airstep.runtime.store import MetadataStore, create_table

MACHINE = {"StartAt": "p", "States": {"p": {"Type": "Pass", "End": True}}}


@pytest.fixture
def aws():
    """moto's DynamoDB (the metadata table "t") and Step Functions with one state machine (a Pass):
    (store, sfn client, state machine ARN). Without execute_state_machine, executions stay RUNNING
    until a test stops them."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(dynamodb, "t")
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="airstep-dev-etl", definition=json.dumps(MACHINE), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        yield MetadataStore("t", client=dynamodb), sfn, arn
