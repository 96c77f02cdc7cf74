"""The roles of DAGs with AWS operators: each such DAG's state machine runs with a role of its own,
which allows what every state machine does (the stack's StateMachinePolicy) and the calls of its
operators (the policy the compiler writes, airstep_compiler.iam), under the environment's permissions
boundary (DagPermissionsBoundary). The compile function keeps them: created on a DAG's first deploy,
their policy replaced on each, deleted when the DAG is removed or no longer needs one."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from airstep_compiler.iam import POLICY_NAME, resolved

ROLE_NAME_CHARS = 64  # IAM's limit
# A role IAM has just created may not yet be one Step Functions can assume: its calls are retried
PROPAGATION_DELAYS = (1, 2, 4, 8, 15, 30)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DagRoleSettings:
    """Where the roles live and what they get: from the compile function's environment."""

    environment: str
    partition: str
    region: str
    account: str
    boundary_arn: str  # DagPermissionsBoundary
    shared_policy_arn: str  # StateMachinePolicy

    def role_name(self, dag_id: str) -> str:
        """`airstep-<env>-dag-<dag_id>`, hashed to fit IAM's 64 characters when needed. (No path: IAM
        judges a call on a role that does not exist yet by its name alone.)"""
        name = f"airstep-{self.environment}-dag-{dag_id}"
        if len(name) <= ROLE_NAME_CHARS:
            return name
        return f"{name[: ROLE_NAME_CHARS - 9]}-{hashlib.sha256(dag_id.encode()).hexdigest()[:8]}"

    def role_arn(self, dag_id: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name(dag_id)}"


class DagRoles:
    """Creates, updates and deletes the DAGs' own roles with the compile function's IAM client."""

    def __init__(self, settings: DagRoleSettings, iam: Any) -> None:
        self.settings = settings
        self.iam = iam

    def ensure(self, dag_id: str, policy: dict[str, Any]) -> str:
        """The DAG's role, created if missing, with exactly `policy` (the compiler's, with
        placeholders) as its own; returns its ARN."""
        settings = self.settings
        name = settings.role_name(dag_id)
        try:
            self.iam.get_role(RoleName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(self._trust()),
                PermissionsBoundary=settings.boundary_arn,
                Description=f"airstep DAG {dag_id[:900]}: its state machine's calls",
                Tags=[{"Key": "airstep:dag_id", "Value": dag_id[:256]}],
            )
        self.iam.attach_role_policy(RoleName=name, PolicyArn=settings.shared_policy_arn)
        document = resolved(policy, settings.partition, settings.region, settings.account)
        self.iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))
        return settings.role_arn(dag_id)

    def remove(self, dag_id: str) -> bool:
        """Delete the DAG's role if it has one (its policies first, as IAM requires)."""
        name = self.settings.role_name(dag_id)
        try:
            self.iam.get_role(RoleName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return False
            raise
        for call, arguments in (
            (self.iam.delete_role_policy, {"PolicyName": POLICY_NAME}),
            (self.iam.detach_role_policy, {"PolicyArn": self.settings.shared_policy_arn}),
            (self.iam.delete_role, {}),
        ):
            try:
                call(RoleName=name, **arguments)
            except ClientError as exc:  # gone already (a retried deploy): the next step goes on
                if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                    raise
        return True

    def _trust(self) -> dict[str, Any]:
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": self.settings.account}},
                }
            ],
        }


def once_assumable(call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """`call` (a state machine created or updated with a role), again while Step Functions cannot yet
    assume a role IAM has just made."""
    for delay in (*PROPAGATION_DELAYS, None):
        try:
            return call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            unassumable = error.get("Code") in ("AccessDeniedException", "InvalidArn") and "assume" in str(
                error.get("Message", "")
            )
            if not unassumable or delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")
