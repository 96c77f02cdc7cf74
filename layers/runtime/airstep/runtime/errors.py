"""Errors the task runner raises; Step Functions names each after its class (see the compiler's Retry)."""


class AirstepTaskFailed(Exception):  # noqa: N818 - the name is the Step Functions error name
    """A task try failed and the task may be retried."""


class AirstepTaskFailedNoRetry(Exception):  # noqa: N818
    """A task failed in a way that must not be retried (AirflowFailException)."""


class XComTooLarge(ValueError):  # noqa: N818
    """A return value the metadata store cannot hold: too large, or not JSON."""
