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
OWNER_TAG = "airstep:dag_id"
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

    @property
    def prefix(self) -> str:
        """What every DAG role's name starts with: IAM names are global, so the region is in it."""
        return f"airstep-{self.environment}-{self.region}-dag-"

    def role_name(self, dag_id: str) -> str:
        """`airstep-<env>-<region>-dag-<dag_id>`; a dag_id too long for IAM's 64 characters, or not
        ASCII, ends with `=` and a hash of it instead (no dag_id has a `=`: no other DAG's name can
        be that one). No path: IAM judges a call on a role that does not exist yet by its name."""
        name = f"{self.prefix}{dag_id}"
        if len(name) <= ROLE_NAME_CHARS and dag_id.isascii():
            return name
        digest = hashlib.sha256(dag_id.encode()).hexdigest()[:12]
        kept = "".join(c for c in dag_id if c.isascii())[: ROLE_NAME_CHARS - len(self.prefix) - 13]
        return f"{self.prefix}{kept}={digest}"

    def role_arn(self, dag_id: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name(dag_id)}"


class RoleTaken(Exception):
    """The role a DAG would have is another DAG's."""


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
        role = self._role(dag_id)
        if role is not None and not _owned_by(role, dag_id):  # another DAG's: never taken over
            raise RoleTaken(f"the IAM role {name} belongs to DAG {_owner(role)!r}, not {dag_id!r}")
        if role is None:
            self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(self._trust()),
                PermissionsBoundary=settings.boundary_arn,
                Description=f"airstep DAG {dag_id[:900]}: its state machine's calls",
                Tags=[{"Key": OWNER_TAG, "Value": dag_id[:256]}],
            )
        self.iam.attach_role_policy(RoleName=name, PolicyArn=settings.shared_policy_arn)
        document = resolved(policy, settings.partition, settings.region, settings.account)
        self.iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))
        return settings.role_arn(dag_id)

    def remove(self, dag_id: str) -> bool:
        """Delete the DAG's role if it has one (its policies first, as IAM requires)."""
        name = self.settings.role_name(dag_id)
        if not self.has(dag_id):  # none, or another DAG's: never deleted for this one
            return False
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

    def has(self, dag_id: str) -> bool:
        """Whether the DAG has a role of its own (one of that name that another DAG owns is not its)."""
        role = self._role(dag_id)
        return role is not None and _owned_by(role, dag_id)

    def taken(self, dag_id: str) -> str | None:
        """Why the DAG cannot have its role: another DAG owns a role of that name (None: it can)."""
        role = self._role(dag_id)
        if role is None or _owned_by(role, dag_id):
            return None
        name, owner = role["RoleName"], _owner(role)
        return f"the IAM role {name} this DAG would run with belongs to DAG {owner!r}: rename one of them"

    def _role(self, dag_id: str) -> dict[str, Any] | None:
        """The role of the DAG's name (whoever owns it), or None."""
        try:
            return dict(self.iam.get_role(RoleName=self.settings.role_name(dag_id))["Role"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise

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


def _owner(role: dict[str, Any]) -> str | None:
    return next((tag["Value"] for tag in role.get("Tags", []) if tag["Key"] == OWNER_TAG), None)


def _owned_by(role: dict[str, Any], dag_id: str) -> bool:
    """Whether the role is the DAG's: tagged with its id, or with no owner tag at all."""
    return _owner(role) in (None, dag_id[:256])


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
