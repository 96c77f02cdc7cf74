"""template.yaml agrees with the code, and its IAM is least-privilege."""

from cfnlint.decode import cfn_yaml

from airstep.runtime.store import TABLE_SCHEMA
from helpers import ROOT

TEMPLATE = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
# Actions whose API takes no resource ARN to scope to (a task token is opaque; a list lists).
UNSCOPABLE = {"states:SendTaskSuccess", "states:SendTaskFailure", "lambda:ListEventSourceMappings"}
# ... and those a condition key scopes instead
SCOPED_BY_CONDITION = {"lambda:CreateEventSourceMapping": "lambda:FunctionArn"}


def test_metadata_table_matches_the_store_schema():
    table = RESOURCES["MetadataTable"]["Properties"]
    assert table["KeySchema"] == TABLE_SCHEMA["KeySchema"]
    assert sorted(a["AttributeName"] for a in table["AttributeDefinitions"]) == sorted(
        a["AttributeName"] for a in TABLE_SCHEMA["AttributeDefinitions"]
    )
    assert [(i["IndexName"], i["KeySchema"]) for i in table["GlobalSecondaryIndexes"]] == [
        (i["IndexName"], i["KeySchema"]) for i in TABLE_SCHEMA["GlobalSecondaryIndexes"]
    ]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    assert table["SSESpecification"]["SSEEnabled"]


def allow_statements():
    for name, resource in RESOURCES.items():
        properties = resource.get("Properties", {})
        documents = [
            p["PolicyDocument"] for p in properties.get("Policies", []) if isinstance(p, dict) and "PolicyDocument" in p
        ]
        documents += [p for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and name != "DagPermissionsBoundary":  # (a ceiling: below)
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                if "Fn::If" in statement:  # a statement of a condition's: as it is when the condition holds
                    statement = statement["Fn::If"][1]
                if statement["Effect"] == "Allow":
                    yield name, statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_no_wildcard_actions_and_no_star_resource_where_scoping_exists():
    statements = list(allow_statements())
    assert len(statements) >= 10
    for name, statement in statements:
        actions = as_list(statement["Action"])
        assert all(a != "*" and not a.endswith(":*") for a in actions), (name, actions)
        if "*" in as_list(statement["Resource"]):
            conditioned = {
                a
                for a, key in SCOPED_BY_CONDITION.items()
                if key in statement.get("Condition", {}).get("StringEquals", {})
            }
            assert set(actions) <= UNSCOPABLE | conditioned, (name, actions)


def test_every_function_has_a_log_group_with_retention():
    functions = [n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 8
    for name in functions:
        group = RESOURCES[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_bucket_is_private_versioned_encrypted_and_tls_only():
    bucket = RESOURCES["DagBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]
    (deny,) = RESOURCES["DagBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alarms_watch_the_metrics_the_code_emits():
    from airstep.runtime.audit import NOT_WRITTEN_METRIC
    from airstep.runtime.deadline_alerts import MISSED_METRIC, NOT_ARMED_METRIC
    from airstep.runtime.run_tracker import STATUS_METRICS

    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {a["MetricName"] for a in alarms if a["Namespace"] == "airstep"}
    expected = {*STATUS_METRICS.values(), "DagImportErrors", "TaskRunnerErrors", MISSED_METRIC, NOT_ARMED_METRIC}
    assert watched == expected | {NOT_WRITTEN_METRIC}
    queues = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in alarms if a["Namespace"] == "AWS/SQS"}
    assert queues == {"FailedEventsQueue", "ScheduleDeadLetterQueue"}


def test_no_asynchronous_event_is_dropped_silently():
    """Every function AWS invokes asynchronously keeps the events that failed all their attempts."""
    asynchronous = {
        "CompileDagsFunction",
        "StartRunFunction",
        "TrackRunsFunction",
        "ReconcileRunsFunction",
        "AssetEventsFunction",
    }
    for name in asynchronous:
        config = RESOURCES[name]["Properties"]["EventInvokeConfig"]
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    invoked_by_events = {
        name
        for name, r in RESOURCES.items()
        if r["Type"] == "AWS::Serverless::Function" and r["Properties"].get("Events")
    }
    assert invoked_by_events <= asynchronous


def test_environment_names_cannot_prefix_one_another():
    import re

    pattern = re.compile(f"^(?:{TEMPLATE['Parameters']['EnvironmentName']['AllowedPattern']})$")
    assert all(pattern.match(name) for name in ("dev", "prod", "staging2"))
    assert not any(pattern.match(name) for name in ("dev-eu", "Dev", "d", "-dev"))


def test_each_environment_reads_its_own_connections_and_variables():
    variables = RESOURCES["ExecuteTaskFunction"]["Properties"]["Environment"]["Variables"]
    for name, kind in (("AIRSTEP_CONNECTIONS_PREFIX", "connections"), ("AIRSTEP_VARIABLES_PREFIX", "variables")):
        condition, default, _ = variables[name]["Fn::If"]
        assert default == {"Fn::Sub": f"airflow/${{EnvironmentName}}/{kind}"}
        assert TEMPLATE["Conditions"][condition]["Fn::Equals"][1] == ""


def test_run_data_carries_the_ttl_attribute_the_table_expires():
    from airstep.runtime.store.codec import EXPIRES_AT

    ttl = RESOURCES["MetadataTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": EXPIRES_AT, "Enabled": True}
    assert RESOURCES["RunTaskFunction"]["Properties"].get("Environment") is not None
    assert "AIRSTEP_RETENTION_DAYS" in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def test_every_checkov_finding_that_is_skipped_says_why():
    skips = [
        (name, skip)
        for name, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert len(skips) >= 30
    for name, skip in skips:
        assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 40, (name, skip)


def test_stateful_resources_say_what_happens_to_them():
    stateful = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Logs::LogGroup")
    for name, resource in RESOURCES.items():
        if resource["Type"] in stateful:
            assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"], name
    assert RESOURCES["MetadataTable"]["DeletionPolicy"] == "Retain"
    assert RESOURCES["DagBucket"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": "AccessLogBucket"
    }


def test_the_asset_events_timeout_is_the_one_watched_queues_are_checked_against():
    from airstep_compiler.queue_mappings import FUNCTION_TIMEOUT_SECONDS

    assert RESOURCES["AssetEventsFunction"]["Properties"]["Timeout"] == FUNCTION_TIMEOUT_SECONDS


def test_the_dashboard_reads_the_metrics_and_log_lines_the_code_writes():
    import json
    import re

    from airstep.runtime.run_tracker import EXECUTION_STATUS, STATUS_METRICS
    from airstep.runtime.task_runner import TRY_ENDED

    body, names = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: m.group(1), body))["widgets"]
    emitted = {*STATUS_METRICS.values(), "DagImportErrors", "TaskRunnerErrors"}
    charted = {m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"] if m[0] == "airstep"}
    assert charted and charted <= emitted
    queries = [w["properties"]["query"] for w in widgets if w["type"] == "log"]
    assert any(f"message = '{EXECUTION_STATUS}'" in q and "by dag_id, status" in q for q in queries)
    assert any(f"message = '{TRY_ENDED}'" in q and "state = 'failed'" in q for q in queries)
    assert any(f"message = '{TRY_ENDED}'" in q and "pct(duration, 99)" in q for q in queries)
    sources = {re.match(r"SOURCE '(\w+)'", q).group(1) for q in queries}
    assert {names[s]["Ref"] for s in sources} == {"TrackRunsLogGroup", "RunTaskLogGroup"}
    (dlq_widget,) = [w for w in widgets if w["type"] == "metric" and w["properties"]["metrics"][0][0] == "AWS/SQS"]
    placeholders = {m[-1] for m in dlq_widget["properties"]["metrics"]}
    assert {names[p]["Fn::GetAtt"][0] for p in placeholders} == {"FailedEventsQueue", "ScheduleDeadLetterQueue"}


def test_local_runs_are_metered_at_the_memory_the_functions_are_given():
    from airstep.runtime.constants import DEFAULT_EXECUTOR_MEMORY_MB, EXECUTOR_MEMORY_ENV, RUNNER_MEMORY_MB

    resources = TEMPLATE["Resources"]
    runner = resources["RunTaskFunction"]["Properties"]
    assert runner["MemorySize"] == RUNNER_MEMORY_MB
    assert runner["Environment"]["Variables"][EXECUTOR_MEMORY_ENV] == {"Ref": "TaskMemorySize"}
    assert resources["ExecuteTaskFunction"]["Properties"]["MemorySize"] == {"Ref": "TaskMemorySize"}
    assert TEMPLATE["Parameters"]["TaskMemorySize"]["Default"] == DEFAULT_EXECUTOR_MEMORY_MB
    assert TEMPLATE["Globals"]["Function"]["Architectures"] == ["arm64"]  # the Lambda prices airstep_cli.prices uses


def test_no_resource_depends_on_itself():
    """CloudFormation refuses a template whose resources refer to one another in a circle (cfn-lint
    misses one that runs through a SAM function's policies)."""
    import re

    def references(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "Ref" and isinstance(inner, str):
                    yield inner
                elif key == "Fn::GetAtt":
                    yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
                elif key == "Fn::Sub":
                    text = inner[0] if isinstance(inner, list) else inner
                    yield from (name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
                    yield from references(inner[1] if isinstance(inner, list) else {})
                else:
                    yield from references(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from references(inner)

    graph = {name: set(references(resource)) & set(RESOURCES) for name, resource in RESOURCES.items()}
    graph = {name: needs - {name} for name, needs in graph.items()}
    done: set[str] = set()

    def visit(name, path):
        assert name not in path, f"a dependency cycle: {' -> '.join([*path, name])}"
        if name not in done:
            for needed in sorted(graph[name]):
                visit(needed, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_every_function_and_the_readmes_queue_executor_keep_out_of_the_audit_trail():
    """Each function's role has one of the audit trail's denials (test_iam proves what they deny), and
    so does the queue executor the README shows how to add: AWSLambdaBasicExecutionRole would
    otherwise let its task code write to the audit log group."""
    guards = {"AuditTrailUntouchablePolicy", "AuditTrailAppendOnlyPolicy"}
    readme = (ROOT / "README.md").read_text()
    example = readme.split("ExecuteTaskWarehouseFunction:", 1)[1].split("```", 1)[0]
    assert "- !Ref AuditTrailUntouchablePolicy" in example
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function":
            named = {p["Ref"] for p in resource["Properties"].get("Policies", []) if isinstance(p, dict) and "Ref" in p}
            wanted = "AuditTrailAppendOnlyPolicy" if name == "CompileDagsFunction" else "AuditTrailUntouchablePolicy"
            assert named & guards == {wanted}, name


def test_a_dags_own_role_may_do_what_every_state_machine_does_and_the_calls_the_platform_allows():
    boundary = RESOURCES["DagPermissionsBoundary"]["Properties"]["PolicyDocument"]["Statement"]
    shared = RESOURCES["StateMachinePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert boundary[: len(shared)] == shared  # the boundary never takes away what the shared policy gives
    operators, *denials = boundary[len(shared) :]
    assert {d["Effect"] for d in denials} == {"Deny"}
    assert operators["Action"] == {"Ref": "DagBoundaryActions"} and operators["Resource"] == {
        "Ref": "DagBoundaryResources"
    }
    assert RESOURCES["StateMachineRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "StateMachinePolicy"}]
    policies = RESOURCES["CompileDagsFunction"]["Properties"]["Policies"]
    compile_role = {s.get("Sid"): s for policy in policies if "Statement" in policy for s in policy["Statement"]}
    for sid in ("DagRolesUnderTheBoundary", "DagRolesGetTheStateMachinePolicy"):  # never a role without it
        assert compile_role[sid]["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == {
            "Ref": "DagPermissionsBoundary"
        }
    assert "iam:PutRolePermissionsBoundary" not in str(compile_role) and "iam:UpdateAssumeRolePolicy" not in str(
        compile_role
    )


def test_the_dag_boundary_names_each_action_and_keeps_dags_off_the_platforms_own_data():
    actions = TEMPLATE["Parameters"]["DagBoundaryActions"]["Default"].split(",")
    assert not [a for a in actions if a.endswith(":*") or a == "*"]  # each call the operators make, no service wide
    assert "iam:PassRole" not in actions and "secretsmanager:GetSecretValue" not in actions  # (the platform adds them)
    statements = {s["Sid"]: s for s in RESOURCES["DagPermissionsBoundary"]["Properties"]["PolicyDocument"]["Statement"]}
    denied = [s for s in statements.values() if s["Effect"] == "Deny"]
    assert {s["Sid"] for s in denied} == {
        "NeverThePlatformsBuckets",
        "NeverWriteXComObjects",
        "NeverReadOtherRunsXComs",
        "NeverTheMetadataTable",
        "NeverThePlatformsFunctions",
    }
    functions = " ".join(str(r) for r in statements["NeverThePlatformsFunctions"]["Resource"])
    for name in (
        "start-run",
        "compile-dags",
        "parse-dags",
        "track-runs",
        "reconcile-runs",
        "asset-events",
        "execute-task",
    ):
        assert f"-{name}*" in functions
    assert "run-task" not in functions.replace("execute-task", "")  # the task runner is what every state machine calls
