"""What a run's usage comes to at AWS's public list prices (before any free tier or discount).

The prices are a table in the code, dated: Step Functions Standard transitions per region, and Lambda
on arm64 (the template's architecture) at the first tier's rates, which most regions share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airstep.containers import ContainerPolicy
from airstep.runtime.constants import DEFAULT_EXECUTOR_MEMORY_MB, RUNNER_MEMORY_MB

PRICES_CHECKED = "2026-12-05"  # against aws.amazon.com/step-functions/pricing and /lambda/pricing
DEFAULT_REGION = "us-east-1"  # local runs, and a region not in the table, are priced as this one (said so)
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
LAMBDA_ARM64_GB_SECOND_USD = 0.0000133334
# Fargate, Linux/ARM, us-east-1 (aws.amazon.com/fargate/pricing): per second, one minute at least
FARGATE_ARM64_VCPU_HOUR_USD, FARGATE_ARM64_GB_HOUR_USD = 0.03238, 0.00356
TRANSITION_USD_PER_1000 = {
    "us-east-1": 0.025,
    "us-east-2": 0.025,
    "us-west-1": 0.0279,
    "us-west-2": 0.025,
    "ca-central-1": 0.025,
    "sa-east-1": 0.0375,
    "us-gov-east-1": 0.03,
    "us-gov-west-1": 0.03,
    "eu-west-1": 0.025,
    "eu-central-1": 0.025,
    "eu-west-2": 0.025,
    "eu-west-3": 0.0297,
    "eu-north-1": 0.025,
    "ap-southeast-1": 0.025,
    "ap-northeast-1": 0.025,
    "ap-southeast-2": 0.025,
    "ap-northeast-2": 0.0271,
    "ap-south-1": 0.0285,
}


@dataclass(frozen=True, slots=True)
class Price:
    """A run's usage priced in one region's table (`priced_as`: the region whose prices were used)."""

    region: str
    priced_as: str
    transitions_usd: float | None  # None: the run's transitions are not counted yet
    lambda_usd: float

    @property
    def total_usd(self) -> float:
        return (self.transitions_usd or 0.0) + self.lambda_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd": round(self.total_usd, 8),
            "transitions_usd": None if self.transitions_usd is None else round(self.transitions_usd, 8),
            "lambda_usd": round(self.lambda_usd, 8),
            "region": self.region,
            "priced_as": self.priced_as,
            "prices_checked": PRICES_CHECKED,
        }


def price(usage: dict[str, Any], region: str | None) -> Price:
    """The price of a run's usage (RunRecord.usage) at `region`'s list prices."""
    wanted = region or DEFAULT_REGION
    priced_as = wanted if wanted in TRANSITION_USD_PER_1000 else DEFAULT_REGION
    transitions = usage.get("transitions")
    return Price(
        wanted,
        priced_as,
        None if transitions is None else transitions * TRANSITION_USD_PER_1000[priced_as] / 1000,
        usage["lambda_requests"] * LAMBDA_REQUEST_USD + usage["lambda_gb_seconds"] * LAMBDA_ARM64_GB_SECOND_USD,
    )


def describe(usage: dict[str, Any], region: str | None) -> str:
    """One line: the run's price, what it is made of, and which prices."""
    cost = price(usage, region)
    transitions = usage.get("transitions")
    counted = (
        "transitions not counted yet"
        if transitions is None
        else f"{'~' if usage.get('transitions_estimated') else ''}{transitions:,} transitions"
    )
    where = cost.region if cost.priced_as == cost.region else f"{cost.region} (priced as {cost.priced_as})"
    return (
        f"${cost.total_usd:.6f} ({counted}; {usage['lambda_requests']:,} Lambda requests, "
        f"{usage['lambda_gb_seconds']:.3f} GB-s) at {where} list prices of {PRICES_CHECKED}"
    )


def estimate_per_run(transitions: int, requests: int, containers: Iterable[ContainerPolicy] = ()) -> str:
    """What `airstep compile` prints: a run's transitions and Lambda requests priced, and what each
    second of task code adds (its executor's memory and the runner's, which waits on it), at the
    template's default memory sizes; and a second of a container try, at each size the DAG's use."""
    fixed = transitions * TRANSITION_USD_PER_1000[DEFAULT_REGION] / 1000 + requests * LAMBDA_REQUEST_USD
    executor, runner = DEFAULT_EXECUTOR_MEMORY_MB, RUNNER_MEMORY_MB
    per_second = (executor + runner) / 1024 * LAMBDA_ARM64_GB_SECOND_USD
    return (
        f"~${fixed:.5f}/run for its transitions and ~{requests} Lambda requests, plus ${per_second:.7f} per "
        f"second of task code ({executor:,} MB executor, {runner} MB runner waiting on it) at "
        f"{DEFAULT_REGION} list prices of {PRICES_CHECKED}"
        + "".join(
            f"; ${_fargate_second(c):.7f} per second of a try on the ECS executor at {c.cpu / 1024:g} vCPU, "
            f"{c.memory / 1024:g} GB (Fargate arm64, a minute at least)"
            for c in sorted(set(containers), key=lambda c: (c.cpu, c.memory))
        )
    )


def _fargate_second(size: ContainerPolicy) -> float:
    """A second of a Fargate task of `size` (arm64, us-east-1)."""
    return (size.cpu / 1024 * FARGATE_ARM64_VCPU_HOUR_USD + size.memory / 1024 * FARGATE_ARM64_GB_HOUR_USD) / 3600
