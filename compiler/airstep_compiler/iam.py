"""Each DAG's least-privilege IAM policy, from what its AWS operators' calls need (their grants), and
whether the environment's permissions boundary allows it.

A DAG with AWS operators runs with a role of its own: the shared state-machine permissions (invoke
the task runner, Distributed Maps) plus this policy, under the boundary the platform team sets in
template.yaml (DagBoundaryActions, DagBoundaryResources). Resources hold `${Partition}`, `${Region}`
and `${Account}` until `resolved` fills them in for an environment.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airstep.integration import ACCOUNT, PARTITION, REGION
from airstep.model import DagModel

# IAM's limit on the inline policies of a role, counted without whitespace
POLICY_CHARS = 10_240
POLICY_NAME = "dag"


@dataclass(frozen=True, slots=True)
class Boundary:
    """What the environment lets any DAG's role do: actions and resource ARNs (IAM wildcards)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str) -> bool:
        """Whether the boundary allows `action` on `resource`; a resource a template leaves open
        (`*` in it) is not judged here: the boundary holds each call when it is made."""
        if not any(fnmatch.fnmatchcase(action.lower(), allowed.lower()) for allowed in self.actions):
            return False
        return "*" in resource or any(fnmatch.fnmatchcase(resource, allowed) for allowed in self.resources)


def dag_policy(model: DagModel) -> dict[str, Any] | None:
    """The DAG's policy: each set of actions its tasks need, on every resource they need it on (None:
    the DAG makes no AWS calls of its own)."""
    by_actions: dict[tuple[str, ...], set[str]] = {}
    for task in model.tasks:
        for grant in task.integration.grants if task.integration else ():
            by_actions.setdefault(tuple(sorted(set(grant.actions))), set()).update(grant.resources)
    if not by_actions:
        return None
    statements = [
        {"Effect": "Allow", "Action": list(actions), "Resource": sorted(resources)}
        for actions, resources in sorted(by_actions.items())
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_chars(policy: dict[str, Any]) -> int:
    """The policy's size as IAM counts it (no whitespace)."""
    return len(json.dumps(policy, separators=(",", ":")))


def largest(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as long as any environment makes it (the longest partition and region names)."""
    return resolved(policy, "aws-us-gov", "ap-southeast-99", "0" * 12)


def resolved(policy: dict[str, Any], partition: str, region: str, account: str) -> dict[str, Any]:
    """The policy for one environment: its partition, region and account in each resource."""
    return json.loads(_filled(json.dumps(policy, sort_keys=True), partition, region, account))


def _filled(text: str, partition: str, region: str, account: str) -> str:
    """`text` with the environment's partition, region and account for their placeholders."""
    return text.replace(PARTITION, partition).replace(REGION, region).replace(ACCOUNT, account)


def outside_boundary(
    model: DagModel, boundary: Boundary, partition: str, region: str, account: str
) -> list[tuple[str, str]]:
    """What the DAG's tasks would call that the boundary does not allow: (task_id, a line naming the
    action and the resource), one per task and grant."""
    first: dict[tuple[str, int], str] = {}
    for task_id, grant, action, resource in _calls(model, partition, region, account):
        if not boundary.allows(action, resource):
            first.setdefault(
                (task_id, grant),
                f"task {task_id!r} calls {action} on {resource}, which this environment's permissions boundary "
                "does not allow (the stack's DagBoundaryActions and DagBoundaryResources)",
            )
    return [(task_id, why) for (task_id, _), why in first.items()]


def platform_targets(
    model: DagModel, environment: str, partition: str, region: str, account: str
) -> list[tuple[str, str]]:
    """The tasks whose calls name the platform's own functions or state machines (the task runner,
    another DAG's machine): (task_id, why), one per task. A name a template decides is not known here."""
    own = (
        f":function:airstep-{environment}-",
        f":stateMachine:airstep-{environment}-",
        f":execution:airstep-{environment}-",
    )
    first: dict[str, str] = {}
    for task_id, _, _, resource in _calls(model, partition, region, account):
        if any(o in resource for o in own):
            first.setdefault(
                task_id, f"task {task_id!r} calls {resource}, one of this environment's own: a DAG's calls may not"
            )
    return list(first.items())


def _calls(model: DagModel, partition: str, region: str, account: str) -> Iterable[tuple[str, int, str, str]]:
    """Each call the DAG's tasks may make: (task_id, which of its grants, action, resource filled in)."""
    for task in model.tasks:
        for index, grant in enumerate(task.integration.grants if task.integration else ()):
            for resource in grant.resources:
                filled = _filled(resource, partition, region, account)
                for action in grant.actions:
                    yield task.task_id, index, action, filled
