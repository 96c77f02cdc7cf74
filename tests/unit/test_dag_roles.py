"""The roles of DAGs with AWS operators, kept by the compile function in moto's IAM: created with the
environment's boundary and the shared state-machine policy, their own policy replaced on each deploy,
deleted with the DAG; a state machine given a role IAM has just made is tried again."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from airstep_compiler.dag_roles import DagRoles, DagRoleSettings, once_assumable

ACCOUNT = "123456789012"
SETTINGS = DagRoleSettings(
    "dev",
    "aws",
    "us-east-1",
    ACCOUNT,
    f"arn:aws:iam::{ACCOUNT}:policy/airstep-dev-dag-boundary-us-east-1",
    f"arn:aws:iam::{ACCOUNT}:policy/airstep-dev-state-machines-us-east-1",
)
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["glue:StartJobRun"],
            "Resource": ["arn:${Partition}:glue:${Region}:${Account}:job/j"],
        }
    ],
}


@pytest.fixture
def iam():
    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        for arn in (SETTINGS.boundary_arn, SETTINGS.shared_policy_arn):
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            client.create_policy(PolicyName=arn.rsplit("/", 1)[1], PolicyDocument=json.dumps(document))
        yield client


def test_a_dags_role_has_the_boundary_the_shared_policy_and_its_own_policy_for_its_environment(iam):
    roles = DagRoles(SETTINGS, iam)
    arn = roles.ensure("nightly", POLICY)
    assert arn == f"arn:aws:iam::{ACCOUNT}:role/airstep-dev-dag-nightly"
    role = iam.get_role(RoleName="airstep-dev-dag-nightly")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == SETTINGS.boundary_arn
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName="airstep-dev-dag-nightly")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [SETTINGS.shared_policy_arn]
    own = iam.get_role_policy(RoleName="airstep-dev-dag-nightly", PolicyName="dag")["PolicyDocument"]
    assert own["Statement"][0]["Resource"] == ["arn:aws:glue:us-east-1:123456789012:job/j"]
    changed = {**POLICY, "Statement": [{**POLICY["Statement"][0], "Action": ["glue:GetJobRun"]}]}
    assert roles.ensure("nightly", changed) == arn  # a redeploy replaces its policy, the role stays
    own = iam.get_role_policy(RoleName="airstep-dev-dag-nightly", PolicyName="dag")["PolicyDocument"]
    assert own["Statement"][0]["Action"] == ["glue:GetJobRun"]
    assert roles.remove("nightly") and not roles.remove("nightly")  # gone, then nothing to remove
    assert iam.list_roles()["Roles"] == []


def test_a_long_dag_id_gets_a_hashed_role_name_within_iams_64_characters():
    long_id = "x" * 200
    name = SETTINGS.role_name(long_id)
    assert len(name) == 64 and name.startswith("airstep-dev-dag-xxx") and name != SETTINGS.role_name(long_id + "y")


def test_a_role_step_functions_cannot_assume_yet_is_tried_again_and_other_errors_are_not():
    answers = iter(
        [
            _error(
                "AccessDeniedException",
                "Neither the global service principal states.amazonaws.com, nor "
                "the regional one is authorized to assume the provided role.",
            ),
            "ok",
        ]
    )
    slept: list[float] = []

    def create():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert once_assumable(create, slept.append) == "ok" and slept == [1]
    with pytest.raises(ClientError):
        once_assumable(lambda: (_ for _ in ()).throw(_error("AccessDeniedException", "not allowed")), slept.append)


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateStateMachine")
