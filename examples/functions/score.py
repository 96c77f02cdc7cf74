"""The Lambda function examples/dags/aws_calls.py invokes (its handler, run locally with --lambda)."""


def handler(event: dict, context: object) -> dict:
    return {"day": event["day"], "score": round(event["rows"] / 100, 2)}
