"""GlueCrawlerRunOperator and GlueCrawlerOperator (airflow.providers.amazon.aws.operators.glue_crawler)
as Step Functions calls: `glue:startCrawler`, then `glue:getCrawler` every `poll_interval` seconds
until the crawler is READY again (Glue crawlers have no `.sync` integration), holding no compute
while they wait. The XCom is the crawler's name, as the provider returns it.

`GlueCrawlerOperator` (deprecated by the provider) also creates or updates the crawler from its
`config`; airstep runs the crawler as deployed and uses only `config["Name"]`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstep.integration import Grant, Poll, arn
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text

START = "arn:aws:states:::aws-sdk:glue:startCrawler"
DESCRIBE = "arn:aws:states:::aws-sdk:glue:getCrawler"
WAITER_MAX_ATTEMPTS = 1000  # the provider's crawler_ready waiter
TRIGGER_MAX_ATTEMPTS = 1500  # ... and its GlueCrawlerCompleteTrigger's, deferred
ALREADY_RUNNING = "Glue.CrawlerRunningException"


class GlueCrawlerRunOperator(AwsOperator):
    """Runs an existing Glue crawler; waits (unless `wait_for_completion=False`) until it is ready
    again, and fails the try if its crawl failed or was cancelled. Returns the crawler's name."""

    template_fields = ("crawler_name",)
    resource = START
    fields = {"crawler_name": Field("Name", text)}
    returns = ("Crawler.Name",)
    returns_value = True

    def __init__(
        self,
        *,
        crawler_name: str,
        poll_interval: int = 5,
        wait_for_completion: bool = True,
        deferrable: bool = False,
        fail_on_already_running: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.crawler_name = crawler_name
        self.poll_interval = poll_interval
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.fail_on_already_running = fail_on_already_running
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval < 1:
            self.refuse("poll_interval", f"expected at least 1 second, got {poll_interval!r}")

    def waits(self) -> bool:
        return self.wait_for_completion or self.deferrable

    def integration_poll(self) -> Poll:
        waits = self.waits()
        return Poll(
            resource=DESCRIBE,
            parameters=("Name",),
            status="Crawler.State",
            running=("RUNNING", "STOPPING") if waits else (),
            failure="Crawler.LastCrawl.Status" if waits else "",
            failed=("FAILED", "CANCELLED") if waits else (),
            message="Crawler.LastCrawl.ErrorMessage",
            interval_seconds=int(self.poll_interval),
            max_polls=self.max_attempts() if waits else 1,
            resume_on=() if self.fail_on_already_running else (ALREADY_RUNNING,),
            failed_as="AirflowException" if self.deferrable else "WaiterError",
        )

    def max_attempts(self) -> int:
        return TRIGGER_MAX_ATTEMPTS if self.deferrable else WAITER_MAX_ATTEMPTS

    def wait_seconds(self) -> float | None:
        return float(self.max_attempts() * int(self.poll_interval)) if self.waits() else None

    def grants(self) -> tuple[Grant, ...]:
        crawler = self.named(self.crawler_name)
        return (Grant(("glue:StartCrawler", "glue:GetCrawler"), (arn("glue", f"crawler/{crawler}"),)),)


def _crawler_name(config: Any) -> str:
    if not isinstance(config, Mapping) or not isinstance(config.get("Name"), str):
        raise TypeError("config must be a dict with the crawler's Name")
    return str(config["Name"])


class GlueCrawlerOperator(GlueCrawlerRunOperator):
    """The provider's deprecated crawler operator: runs the crawler `config["Name"]` as
    GlueCrawlerRunOperator does (the rest of `config` would create or update it: not here)."""

    template_fields = ("config",)
    fields = {"config": Field("Name", _crawler_name)}

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        self.config = config
        name = config.get("Name") if isinstance(config, Mapping) else None
        super().__init__(crawler_name=name if isinstance(name, str) else "", **kwargs)
