"""The roles of DAGs with AWS operators, kept by the compile function in moto's IAM: created with the
environment's boundary and the shared state-machine policy, their own policy replaced on each deploy,
deleted with the DAG; a state machine given a role IAM has just made is tried again."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from airstep_compiler.dag_roles import DagRoles, DagRoleSettings, RoleTaken, once_assumable

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
    assert arn == f"arn:aws:iam::{ACCOUNT}:role/airstep-dev-us-east-1-dag-nightly"
    role = iam.get_role(RoleName="airstep-dev-us-east-1-dag-nightly")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == SETTINGS.boundary_arn
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    attached = iam.list_attached_role_policies(RoleName="airstep-dev-us-east-1-dag-nightly")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [SETTINGS.shared_policy_arn]
    own = iam.get_role_policy(RoleName="airstep-dev-us-east-1-dag-nightly", PolicyName="dag")["PolicyDocument"]
    assert own["Statement"][0]["Resource"] == ["arn:aws:glue:us-east-1:123456789012:job/j"]
    changed = {**POLICY, "Statement": [{**POLICY["Statement"][0], "Action": ["glue:GetJobRun"]}]}
    assert roles.ensure("nightly", changed) == arn  # a redeploy replaces its policy, the role stays
    own = iam.get_role_policy(RoleName="airstep-dev-us-east-1-dag-nightly", PolicyName="dag")["PolicyDocument"]
    assert own["Statement"][0]["Action"] == ["glue:GetJobRun"]
    assert roles.remove("nightly") and not roles.remove("nightly")  # gone, then nothing to remove
    assert iam.list_roles()["Roles"] == []


def test_a_long_or_unicode_dag_id_gets_a_hashed_role_name_no_other_dag_id_can_have():
    long_id = "finance_ledger_reconciliation_nightly_with_a_long_descriptive_name"
    name = SETTINGS.role_name(long_id)
    assert len(name) <= 64 and name.startswith("airstep-dev-us-east-1-dag-finance") and "=" in name
    assert name != SETTINGS.role_name(long_id + "y")
    # a dag_id has no "=" (Airflow's [\w.-]): a hashed name is never another DAG's plain one
    unicode = SETTINGS.role_name("données")
    assert unicode.isascii() and "=" in unicode  # IAM names are ASCII


def test_a_role_another_dag_owns_is_never_taken_over_nor_deleted(iam):
    roles = DagRoles(SETTINGS, iam)
    roles.ensure("nightly", POLICY)
    iam.tag_role(RoleName="airstep-dev-us-east-1-dag-nightly", Tags=[{"Key": "airstep:dag_id", "Value": "other"}])
    assert "belongs to DAG 'other'" in (roles.taken("nightly") or "")
    with pytest.raises(RoleTaken):
        roles.ensure("nightly", POLICY)
    assert not roles.remove("nightly") and iam.get_role(RoleName="airstep-dev-us-east-1-dag-nightly")
    assert roles.taken("weekly") is None  # no role yet: nothing in the way


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


def test_a_role_a_run_still_uses_is_kept_until_the_run_ends(aws):
    from dataclasses import replace

    from airstep.runtime.store import DagRecord
    from airstep_compiler.deploy import Deployer, Settings

    store, sfn, machine = aws
    iam = boto3.client("iam", region_name="us-east-1")
    for arn in (SETTINGS.boundary_arn, SETTINGS.shared_policy_arn):
        document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.create_policy(PolicyName=arn.rsplit("/", 1)[1], PolicyDocument=json.dumps(document))
    settings = Settings(
        "dev",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:airstep-dev-run-task",
        f"arn:aws:iam::{ACCOUNT}:role/shared",
        "",
        "",
        "",
        "",
        dag_boundary_arn=SETTINGS.boundary_arn,
        state_machine_policy_arn=SETTINGS.shared_policy_arn,
    )
    deployer = Deployer(settings, s3=None, sfn=sfn, scheduler=None, store=store, parser=None, iam=iam)  # type: ignore[arg-type]
    assert deployer.roles is not None
    deployer.roles.ensure("etl", POLICY)
    run = sfn.start_execution(stateMachineArn=machine)["executionArn"]  # (stays RUNNING: moto runs nothing here)
    store.put_dag(DagRecord("etl", "s3://b/dags/etl.py", "v1", None, "UTC", machine))
    assert not deployer._drop_role("etl", machine)  # the run started with it: kept
    store.put_dag(replace(store.get_dag("etl"), role_kept=True))
    deployer._sweep_roles(store.list_dags())
    assert iam.get_role(RoleName="airstep-dev-us-east-1-dag-etl") and store.get_dag("etl").role_kept
    sfn.stop_execution(executionArn=run)
    deployer._sweep_roles(store.list_dags())  # the run ended: the next deploy's sweep deletes it
    assert not store.get_dag("etl").role_kept
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == []
