"""S3CreateObjectOperator, S3CopyObjectOperator and S3DeleteObjectsOperator
(airflow.providers.amazon.aws.operators.s3) as Step Functions' `aws-sdk:s3` calls (`putObject`,
`copyObject`, `deleteObjects`). They return nothing, as the provider's do.

A key may be a full `s3://bucket/key` URL (then without a bucket argument), as the provider takes
it; the bucket part must be known when the DAG compiles (the key part may be templated)."""

from __future__ import annotations

from typing import Any

from airstep.errors import DagDefinitionError
from airstep.integration import PARTITION, Grant
from airstep.sdk.operators.amazon.base import AwsOperator, Field, text
from airstep.sdk.xcom_arg import XComArg, iter_xcom_args

_URL = "s3://"
# Step Functions' aws-sdk integration takes a PutObject Body as text
_TEXT_ENCODINGS = (None, "utf-8", "utf8", "UTF-8")


def split_url(key: str, bucket: str | None, argument: str, bucket_argument: str) -> tuple[str | None, str]:
    """(bucket, key) from the provider's pair of arguments: a relative key and its bucket, or a full
    s3:// URL and no bucket. Raises ValueError when the pair is not one of these."""
    if not key.startswith(_URL):
        if bucket is None:
            raise ValueError(f"{argument} {key!r} is not an s3:// URL and no {bucket_argument} is given")
        return bucket, key
    if bucket is not None:
        raise ValueError(f"{argument} is a full s3:// URL: {bucket_argument} must be left out")
    url_bucket, slash, url_key = key[len(_URL) :].partition("/")
    if not slash or not url_bucket or not url_key:
        raise ValueError(f"{argument} {key!r} names no bucket and key")
    return url_bucket, url_key


def _body(data: Any) -> str:
    if isinstance(data, (bytes, bytearray)):
        try:
            return bytes(data).decode()
        except UnicodeDecodeError:
            raise TypeError("binary data that is not UTF-8 text cannot travel in a state machine") from None
    return text(data)


def bucket_and_key(op: AwsOperator, key: Any, bucket: Any, argument: str, bucket_argument: str) -> tuple[Any, Any]:
    """The bucket and key an S3 operator calls with, from the provider's pair of arguments. The key
    may hold a template or come from an upstream task (XComArg): then the bucket is given apart, or
    written out before the template in an s3:// URL."""
    if bucket is not None and not isinstance(bucket, str):
        op.refuse(bucket_argument, f"expected a string, got {type(bucket).__name__}")
    whence = (
        "comes from an upstream task"
        if not isinstance(key, str)
        else f"is a template ({key!r})"
        if op._holds_template(key) and not key.startswith(_URL)
        else None
    )
    if whence is not None:
        if bucket is None:
            raise DagDefinitionError(
                f"{type(op).__name__} {op.task_id!r}: {argument} {whence}: give {bucket_argument} too (a key "
                "known only when the try begins is not split into a bucket and a key)",
                op.location,
            )
        if not isinstance(key, str) and next(iter_xcom_args(key), None) is None:
            op.refuse(argument, f"expected a string, got {type(key).__name__}")
        return bucket, key
    try:
        split_bucket, split_key = split_url(key, bucket, argument, bucket_argument)
    except ValueError as exc:
        raise DagDefinitionError(f"{type(op).__name__} {op.task_id!r}: {exc}", op.location) from None
    return split_bucket, split_key


class _S3Operator(AwsOperator):
    pushes = False  # the provider's execute returns None

    def object_arn(self, bucket: Any, key: Any) -> str:
        return f"{bucket_arn(self.named(bucket))}/{self.named(key)}"


def bucket_arn(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


class S3CreateObjectOperator(_S3Operator):
    """Writes `data` (text, or bytes that are UTF-8 text) as an object; with `replace=False` (the
    default) an existing object is not overwritten and the try fails, as in Airflow."""

    template_fields = ("s3_bucket", "s3_key", "data")
    resource = "arn:aws:states:::aws-sdk:s3:putObject"
    fields = {"s3_bucket": Field("Bucket", text), "s3_key": Field("Key", text), "data": Field("Body", _body)}

    def __init__(
        self,
        *,
        s3_bucket: str | None = None,
        s3_key: str,
        data: str | bytes,
        replace: bool = False,
        encrypt: bool = False,
        acl_policy: str | None = None,
        encoding: str | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket, self.s3_key = bucket_and_key(self, s3_key, s3_bucket, "s3_key", "s3_bucket")
        self.data = data
        self.replace = replace
        self.encrypt = encrypt
        self.acl_policy = acl_policy
        if acl_policy is not None:
            self.refuse("acl_policy", "not translated yet (the bucket's policy and ownership apply)")
        if encoding not in _TEXT_ENCODINGS:
            self.refuse("encoding", f"{encoding!r}: Step Functions writes the object as UTF-8")
        if compression is not None:
            self.refuse("compression", "the object is written as the text given")
        constants: dict[str, Any] = {}
        if not replace:
            constants["IfNoneMatch"] = "*"  # S3 refuses to overwrite (PreconditionFailed)
        if encrypt:
            constants["ServerSideEncryption"] = "AES256"
        self.call_constants = constants

    def grants(self) -> tuple[Grant, ...]:
        return (Grant(("s3:PutObject",), (self.object_arn(self.s3_bucket, self.s3_key),)),)


class S3CopyObjectOperator(_S3Operator):
    """Copies an object (to another bucket or key)."""

    template_fields = (
        "source_bucket_key",
        "dest_bucket_key",
        "source_bucket_name",
        "dest_bucket_name",
        "copy_source",  # airstep's: the CopySource S3 reads, `bucket/key` of the source
    )
    resource = "arn:aws:states:::aws-sdk:s3:copyObject"
    fields = {
        "dest_bucket_name": Field("Bucket", text),
        "dest_bucket_key": Field("Key", text),
        "copy_source": Field("CopySource", text),
    }

    def __init__(
        self,
        *,
        source_bucket_key: str,
        dest_bucket_key: str,
        source_bucket_name: str | None = None,
        dest_bucket_name: str | None = None,
        source_version_id: str | None = None,
        acl_policy: str | None = None,
        meta_data_directive: str | None = None,
        kms_key_id: str | None = None,
        kms_encryption_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        bucket, key = bucket_and_key(
            self, source_bucket_key, source_bucket_name, "source_bucket_key", "source_bucket_name"
        )
        self.source_bucket_name, self.source_bucket_key = bucket, key
        self.dest_bucket_name, self.dest_bucket_key = bucket_and_key(
            self, dest_bucket_key, dest_bucket_name, "dest_bucket_key", "dest_bucket_name"
        )
        version = f"?versionId={source_version_id}" if source_version_id else ""
        self.copy_source = f"{bucket}/{self._as_text(key, 'source_bucket_key')}{version}"
        for name, value in (
            ("acl_policy", acl_policy),
            ("kms_key_id", kms_key_id),
            ("kms_encryption_type", kms_encryption_type),
        ):
            if value is not None:
                self.refuse(name, "not translated yet (the bucket's default encryption and policy apply)")
        self.call_constants = {"MetadataDirective": meta_data_directive} if meta_data_directive else {}
        self.source_version_id = source_version_id

    def _as_text(self, key: Any, argument: str) -> str:
        """The key as text for CopySource: an upstream task's output as the template that pulls it."""
        if isinstance(key, str):
            return key
        if type(key) is not XComArg:
            self.refuse(argument, f"expected a string or a task's output, got {type(key).__name__}")
        return f"{{{{ ti.xcom_pull(task_ids={key.operator.task_id!r}, key={key.key!r}) }}}}"

    def grants(self) -> tuple[Grant, ...]:
        read = "s3:GetObjectVersion" if self.source_version_id else "s3:GetObject"
        return (
            Grant((read,), (self.object_arn(self.source_bucket_name, self.source_bucket_key),)),
            Grant(("s3:PutObject",), (self.object_arn(self.dest_bucket_name, self.dest_bucket_key),)),
        )


def _keys(value: Any) -> dict[str, Any]:
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, (list, tuple)) or not all(isinstance(key, str) for key in keys):
        raise TypeError(f"expected a key or a list of keys, got {value!r}")
    if len(keys) > 1000:
        raise ValueError(f"{len(keys):,} keys: S3 deletes at most 1,000 in one call")
    return {"Objects": [{"Key": key} for key in keys], "Quiet": True}


class S3DeleteObjectsOperator(_S3Operator):
    """Deletes the objects `keys` names from `bucket` (up to 1,000, in one call); a key S3 could not
    delete fails the try, as the provider raises for the response's Errors."""

    template_fields = ("keys", "bucket", "prefix")
    resource = "arn:aws:states:::aws-sdk:s3:deleteObjects"
    fields = {"bucket": Field("Bucket", text), "keys": Field("Delete", _keys)}
    errors = "Errors"

    def __init__(
        self,
        *,
        bucket: str,
        keys: str | list[str] | None = None,
        prefix: str | None = None,
        from_datetime: Any = None,
        to_datetime: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.keys = keys
        self.prefix = prefix
        self.from_datetime = from_datetime
        self.to_datetime = to_datetime
        by_scan = prefix is not None or from_datetime is not None or to_datetime is not None
        if (keys is not None) == by_scan:
            raise DagDefinitionError(
                f"{type(self).__name__} {self.task_id!r}: either keys or at least one of prefix, from_datetime, "
                "to_datetime should be set",
                self.location,
            )
        if by_scan:
            self.refuse("prefix", "deleting what a listing finds is not translated yet: give the keys")

    def grants(self) -> tuple[Grant, ...]:
        keys = self.keys if isinstance(self.keys, (list, tuple)) else [self.keys]
        return (Grant(("s3:DeleteObject",), tuple(sorted({self.object_arn(self.bucket, key) for key in keys}))),)
