"""template.yaml's IAM as AWS would apply it, to hold the calls of a local run against.

`policies(names)` translates the SAM template (aws-sam-translator, as `sam deploy` does), resolves its
intrinsics for one environment, and gives each principal's statements (inline, the template's managed
policies, and AWSLambdaBasicExecutionRole's): a function's role, the state machines' role.
`iam_requests(call)` says what an AWS API call asks IAM for: the action, the resource ARN and the
condition keys AWS fills in (dynamodb:LeadingKeys, iam:PassedToService), including what
AWS asks implicitly (PassRole when a role is handed over, TagResource when tags come with a create,
ListBucket when a missing object must read as missing). `allowing(statements, request)` evaluates.

moto's own IAM enforcement checks actions against resource "*" for these services, so a statement
scoped to a table or a bucket never matches there; this evaluator checks action, resource and the
conditions the template uses, and refuses to judge a condition it does not know.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from cfnlint.decode import cfn_yaml

from airstep.runtime.map_items import MAP_ITEMS_PREFIX
from airstep_local.aws import AwsCall
from airstep_local.containers import CONTAINER_FUNCTION
from airstep_local.engine import ACCOUNT, REGION, LocalNames
from helpers import ROOT

BASIC_EXECUTION_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# The AWS managed policy SAM gives every function's role (Lambda writes the function's logs with it)
BASIC_EXECUTION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AWSLambdaBasicExecutionRole",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}
STATE_MACHINES = "StateMachineRole"  # the principal of calls the Step Functions interpreter makes
DAG_ROLE = "dag-role:"  # ... and of those it makes with a DAG's own role (DAG_ROLE + the role's name)
_NAME_PROPERTIES = (
    "TableName",
    "BucketName",
    "FunctionName",
    "RoleName",
    "Name",
    "QueueName",
    "TopicName",
    "LogGroupName",
    "ManagedPolicyName",
    "ClusterName",
)


@dataclass(frozen=True, slots=True)
class Request:
    """What one call asks IAM for."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def values(self, key: str) -> tuple[str, ...] | None:
        return dict(self.context).get(key)


def policies(environment: str = "dev", **parameters: Any) -> dict[str, list[dict[str, Any]]]:
    """Principal -> its Allow/Deny statements (inline policies; AWS managed policies are named only),
    for the stack's parameters as given (the others at their defaults)."""
    from samtranslator.translator.transform import transform

    template = json.loads(json.dumps(cfn_yaml.load(str(ROOT / "template.yaml"))))
    for resource in template["Resources"].values():  # what `sam package` does before deploying
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://packaged/code.zip"

    class _ManagedPolicies:
        @staticmethod
        def load() -> dict[str, str]:
            return {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION_ARN}

    previous_region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        translated = transform(template, {"EnvironmentName": environment}, _ManagedPolicies())
    finally:
        if previous_region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous_region
    resolver = _Resolver(translated, environment)
    resolver.parameters.update(parameters)
    roles_of = {  # a function's role -> the function (SAM names the role <function>Role)
        resource["Properties"]["Role"]["Fn::GetAtt"][0]: logical
        for logical, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for logical, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            document = resolver.resolve(resource["Properties"]["PolicyDocument"])
            found[f"{MANAGED}{logical}"] = document["Statement"]
        if resource["Type"] != "AWS::IAM::Role":
            continue
        principal = roles_of.get(logical, logical)
        documents = [policy["PolicyDocument"] for policy in resource["Properties"].get("Policies", [])]
        arns = resource["Properties"].get("ManagedPolicyArns", [])
        if isinstance(arns, dict) and "Fn::If" in arns:  # (the container role: with TaskPolicyArns, or not)
            condition, holds, otherwise = arns["Fn::If"]
            arns = holds if resolver.condition(condition) else otherwise
        for arn in arns:
            if isinstance(arn, dict) and "Ref" in arn:  # a policy of the template's (AWS::IAM::ManagedPolicy)
                documents.append(translated["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"])
            elif arn == BASIC_EXECUTION_ARN:
                documents.append(BASIC_EXECUTION_POLICY)
        found[principal] = [statement for doc in documents for statement in resolver.resolve(doc)["Statement"]]
    return found


class _Resolver:
    """CloudFormation intrinsics, for the values a deployed stack of `environment` would have."""

    def __init__(self, template: dict[str, Any], environment: str) -> None:
        self.template = template
        self.parameters = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(
            {"EnvironmentName": environment, "AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        )

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.get_att(*argument) if argument[0] in self.template["Resources"] else value
            if function == "Fn::Sub":
                return self.sub(argument)
            if function == "Fn::If":
                condition, yes, no = argument
                return self.resolve(yes if self.condition(condition) else no)
            if function == "Fn::Join":
                parts = self.resolve(argument[1])  # a list, or what resolves to one (a list parameter)
                return argument[0].join(str(v) for v in parts)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left if not isinstance(left, list) else ",".join(left)) == str(right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Condition":
            return self.condition(argument)
        raise ValueError(f"condition function {function} is not supported here")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            value = self.parameters[name]
            spec = self.template.get("Parameters", {}).get(name, {})
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [item.strip() for item in value.split(",")] if value else []
            return value
        resource = self.template["Resources"][name]
        if resource["Type"] in ("AWS::SNS::Topic",):
            return self.get_att(name, "Arn")
        if resource["Type"] == "AWS::IAM::ManagedPolicy":  # its Ref is its ARN
            return f"arn:aws:iam::{ACCOUNT}:policy/{self._name(name)}"
        return self._name(name)

    def _name(self, logical: str) -> str:
        properties = self.template["Resources"][logical].get("Properties", {})
        for key in _NAME_PROPERTIES:
            if key in properties:
                return str(self.resolve(properties[key]))
        return logical

    def get_att(self, logical: str, attribute: str) -> str:
        if attribute != "Arn":
            raise ValueError(f"GetAtt {logical}.{attribute} is not supported here")
        kind, name = self.template["Resources"][logical]["Type"], self._name(logical)
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}",
            "AWS::ECS::Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}",
        }[kind]

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


_NO_VALUE = object()


def principal_of(call: AwsCall, names: LocalNames) -> str | None:
    """Whose role a call runs under: a function's, the state machines' (the interpreter invoking
    Lambda or reading a Distributed Map's items), or nobody's (the test itself setting up or reading back)."""
    by_name = {
        names.run_task: "RunTaskFunction",
        names.execute_task: "ExecuteTaskFunction",
        names.parse_dags: "ParseDagsFunction",
        names.compile_dags: "CompileDagsFunction",
        names.start_run: "StartRunFunction",
        names.track_runs: "TrackRunsFunction",
        names.reconcile_runs: "ReconcileRunsFunction",
        names.asset_events: "AssetEventsFunction",
    }
    if call.function == CONTAINER_FUNCTION:
        return "ContainerTaskRole"  # a try's container (ECS runs it with the task definition's task role)
    if call.function is not None:
        return by_name[call.function]
    role_name = call.role.split(":role/", 1)[1] if call.role else ""
    if re.match(r"airstep-[^-]+-[a-z]+(-[a-z]+)+-[0-9]+-dag-", role_name):
        return f"{DAG_ROLE}{role_name}"  # a DAG's own role: its Task states' calls
    if (call.service, call.operation) in (("lambda", "Invoke"), ("ecs", "RunTask")):
        return STATE_MACHINES
    if (call.service, call.operation) == ("s3", "GetObject") and call.params.get("Key", "").startswith(
        MAP_ITEMS_PREFIX
    ):
        return STATE_MACHINES  # a Distributed Map's ItemReader
    return None


def iam_requests(call: AwsCall, names: LocalNames) -> list[Request]:
    """The action, resource and condition keys IAM evaluates for `call` (several when AWS asks for more
    than the operation's own action)."""
    p = call.params
    service, operation = call.service, call.operation
    if service == "dynamodb":
        return _dynamodb(operation, p)
    if service == "s3":
        bucket = f"arn:aws:s3:::{p['Bucket']}"
        if operation in ("ListObjectVersions",):
            return [Request("s3:ListBucketVersions", bucket)]
        if operation in ("ListObjectsV2", "ListObjects"):
            return [Request("s3:ListBucket", bucket)]
        obj = f"{bucket}/{p['Key']}"
        if operation == "GetObject":
            requests = [Request("s3:GetObjectVersion" if "VersionId" in p else "s3:GetObject", obj)]
            if call.error == "NoSuchKey":  # without ListBucket, S3 answers AccessDenied instead
                requests.append(Request("s3:ListBucket", bucket))
            return requests
        return [Request(f"s3:{operation}", obj)]
    if service == "lambda" and operation == "CreateEventSourceMapping":
        mapped = (("lambda:FunctionArn", (names.function_arn(p["FunctionName"].split(":function:")[-1]),)),)
        return [Request("lambda:CreateEventSourceMapping", "*", mapped)]
    if service == "lambda" and operation == "DeleteEventSourceMapping":  # the condition key: the mapping's function
        mapped = (("lambda:FunctionArn", ((call.response or {}).get("FunctionArn", "?"),)),)
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{p['UUID']}"
        return [Request("lambda:DeleteEventSourceMapping", arn, mapped)]
    if service == "lambda" and operation == "ListEventSourceMappings":
        return [Request("lambda:ListEventSourceMappings", "*")]
    if service == "lambda" and operation in ("Invoke", "GetFunctionConfiguration"):
        name = p["FunctionName"].split(":function:")[-1]
        action = "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"
        return [Request(action, names.function_arn(name))]
    if service == "sqs" and operation == "GetQueueAttributes":
        region_account_name = p["QueueUrl"].split("://sqs.", 1)[1].split("/")
        region = region_account_name[0].split(".")[0]
        return [
            Request("sqs:GetQueueAttributes", f"arn:aws:sqs:{region}:{region_account_name[1]}:{region_account_name[2]}")
        ]
    if service == "stepfunctions":
        return _stepfunctions(operation, p)
    if service == "iam":
        return _iam(operation, p)
    if service == "ecs" and operation == "RunTask":  # ... and passing the task definition's two roles to ECS
        family = p["TaskDefinition"].rsplit("/", 1)[-1].split(":")[0]
        environment = family.removeprefix("airstep-").removesuffix("-runner")
        roles = (f"container-tries-{REGION}", f"container-start-{REGION}")
        cluster = p.get("Cluster", "default")
        cluster = cluster if cluster.startswith("arn:") else f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
        return [
            Request(
                "ecs:RunTask",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:1",
                (("ecs:cluster", (cluster,)),),
            ),
            *(
                _pass_role(f"arn:aws:iam::{ACCOUNT}:role/airstep-{environment}-{role}", "ecs-tasks.amazonaws.com")
                for role in roles
            ),
        ]
    if service == "sns" and operation == "Publish":
        return [Request("sns:Publish", p.get("TargetArn") or p["TopicArn"])]
    if service == "sqs" and operation == "SendMessage":
        host, account, name = p["QueueUrl"].split("://", 1)[1].split("/")[:3]
        return [Request("sqs:SendMessage", f"arn:aws:sqs:{host.split('.')[1]}:{account}:{name}")]
    if service == "glue" and operation in ("StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun"):
        return [Request(f"glue:{operation}", f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{p['JobName']}")]
    if service == "athena" and operation in ("StartQueryExecution", "GetQueryExecution", "StopQueryExecution"):
        workgroup = p.get("WorkGroup") or "primary"
        return [Request(f"athena:{operation}", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{workgroup}")]
    if service == "glue" and operation in ("StartCrawler", "GetCrawler"):
        return [Request(f"glue:{operation}", f"arn:aws:glue:{REGION}:{ACCOUNT}:crawler/{p['Name']}")]
    if service == "secretsmanager":
        name = p["SecretId"]
        return [
            Request("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")
        ]
    if service == "logs" and "logGroupName" in p:  # a stream's calls name the stream (CreateLogStream: the new one)
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{p['logGroupName']}"
        stream = f"{group}:log-stream:{p['logStreamName']}" if "logStreamName" in p else group
        return [Request(f"logs:{operation}", stream)]
    if service == "scheduler":
        arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{p['GroupName']}/{p['Name']}"
        requests = [Request(f"scheduler:{operation}", arn)]
        if "Target" in p:
            requests.append(_pass_role(p["Target"]["RoleArn"], "scheduler.amazonaws.com"))
        return requests
    raise ValueError(f"no IAM mapping for {service}:{operation}")


def _dynamodb(operation: str, p: dict[str, Any]) -> list[Request]:
    def table(name: str, index: str | None = None) -> str:
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}" + (f"/index/{index}" if index else "")

    def leading(keys: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return (("dynamodb:LeadingKeys", tuple(sorted(set(keys)))),)

    action = f"dynamodb:{operation}"
    if operation in ("GetItem", "UpdateItem", "DeleteItem"):
        return [Request(action, table(p["TableName"]), leading([p["Key"]["pk"]["S"]]))]
    if operation == "PutItem":
        return [Request(action, table(p["TableName"]), leading([p["Item"]["pk"]["S"]]))]
    if operation == "BatchGetItem":
        return [
            Request(action, table(name), leading([key["pk"]["S"] for key in request["Keys"]]))
            for name, request in p["RequestItems"].items()
        ]
    if operation == "TransactWriteItems":  # each part is authorised as the call it makes
        parts = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            Request(
                f"dynamodb:{parts[kind]}",
                table(part["TableName"]),
                leading([(part.get("Key") or part["Item"])["pk"]["S"]]),
            )
            for item in p["TransactItems"]
            for kind, part in item.items()
        ]
    if operation == "Query":
        partition = next(v["S"] for k, v in p["ExpressionAttributeValues"].items() if k == ":pk")
        return [Request(action, table(p["TableName"], p.get("IndexName")), leading([partition]))]
    return [Request(action, table(p["TableName"]))]


def _stepfunctions(operation: str, p: dict[str, Any]) -> list[Request]:
    action = f"states:{operation}"
    if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return [Request(action, "*")]
    if operation == "CreateStateMachine":
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{p['name']}"
        requests = [Request(action, arn), _pass_role(p["roleArn"], "states.amazonaws.com")]
        if p.get("tags"):
            requests.append(Request("states:TagResource", arn))
        return requests
    if operation == "StartExecution":
        return [Request(action, p["stateMachineArn"])]
    if operation == "UpdateStateMachine" and "roleArn" in p:
        return [Request(action, p["stateMachineArn"]), _pass_role(p["roleArn"], "states.amazonaws.com")]
    if operation in ("DescribeStateMachine", "UpdateStateMachine", "DeleteStateMachine"):
        return [Request(action, p["stateMachineArn"])]
    if operation in (
        "DescribeExecution",
        "StopExecution",
        "DescribeStateMachineForExecution",
        "GetExecutionHistory",
        "ListMapRuns",
    ):
        return [Request(action, p["executionArn"])]
    if operation == "ListExecutions" and "mapRunArn" in p:  # a Distributed Map's children
        return [Request(action, p["mapRunArn"])]
    if operation == "ListExecutions":
        return [Request(action, p["stateMachineArn"])]
    if operation == "DescribeMapRun":
        return [Request(action, p["mapRunArn"])]
    raise ValueError(f"no IAM mapping for states:{operation}")


# Each role the calls have created: its boundary, its own policy and the managed policies attached to
# it (IAM judges a call on a role by its boundary; the role's Task states' calls by all three).
ROLES: dict[str, dict[str, Any]] = {}


def _iam(operation: str, p: dict[str, Any]) -> list[Request]:
    name = p["RoleName"]
    arn = f"arn:aws:iam::{ACCOUNT}:role{p.get('Path', '/')}{name}"
    if operation == "CreateRole":
        ROLES[name] = {"arn": arn, "boundary": p.get("PermissionsBoundary"), "policy": None, "attached": []}
        requests = [Request("iam:CreateRole", arn, _bounded(p.get("PermissionsBoundary")))]
        if p.get("Tags"):
            requests.append(Request("iam:TagRole", arn))
        return requests
    known = ROLES.get(name, {"arn": arn, "boundary": None, "policy": None, "attached": []})
    bounded = _bounded(known["boundary"])
    if operation == "PutRolePolicy":
        known["policy"] = json.loads(p["PolicyDocument"])
    if operation == "AttachRolePolicy":
        known["attached"].append(p["PolicyArn"])
        return [Request("iam:AttachRolePolicy", known["arn"], (*bounded, ("iam:PolicyARN", (p["PolicyArn"],))))]
    if operation == "DetachRolePolicy":
        return [Request("iam:DetachRolePolicy", known["arn"], (*bounded, ("iam:PolicyARN", (p["PolicyArn"],))))]
    if operation in ("PutRolePolicy", "DeleteRolePolicy"):
        return [Request(f"iam:{operation}", known["arn"], bounded)]
    if operation in ("GetRole", "DeleteRole", "TagRole"):
        return [Request(f"iam:{operation}", known["arn"])]
    raise ValueError(f"no IAM mapping for iam:{operation}")


def _bounded(boundary: str | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("iam:PermissionsBoundary", (boundary,)),) if boundary else ()


def managed_policy(logical: str, environment: str = "dev", **parameters: Any) -> list[dict[str, Any]]:
    """The statements of one of the template's managed policies (a DAG role's boundary, the state
    machines' shared policy), resolved as for `policies`."""
    return policies(environment, **parameters)[f"{MANAGED}{logical}"]


MANAGED = "managed:"  # (keys of `policies` for the template's managed policies themselves)


def _pass_role(role_arn: str, service: str) -> Request:
    return Request("iam:PassRole", role_arn, (("iam:PassedToService", (service,)),))


def allowing(statements: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    """The Allow statements that allow `request` (none if a Deny matches)."""
    matching = [s for s in statements if _matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return []
    return [s for s in matching if s["Effect"] == "Allow"]


def _matches(statement: dict[str, Any], request: Request) -> bool:
    resources = _as_list(statement["Resource"])
    named = any(
        fnmatch.fnmatchcase(request.action.lower(), a.lower())
        for a in _as_list(statement.get("Action", statement.get("NotAction")))
    )
    if named != ("Action" in statement):  # NotAction: every action but those named
        return False
    if not any(fnmatch.fnmatchcase(request.resource, r) for r in resources):
        return False
    return all(
        _condition(op, key, _as_list(expected), request)
        for op, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def _condition(operator: str, key: str, expected: list[str], request: Request) -> bool:
    values = request.values(key)
    if operator == "ForAllValues:StringLike":
        return all(any(fnmatch.fnmatchcase(v, e) for e in expected) for v in values or ())
    if operator in ("StringEquals", "StringLike", "ArnEquals"):
        if values is None:
            return False
        match = (lambda v, e: v == e) if operator in ("StringEquals", "ArnEquals") else fnmatch.fnmatchcase
        return all(any(match(v, e) for e in expected) for v in values)
    raise ValueError(f"condition operator {operator} is not evaluated here: extend tests/iam.py")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
