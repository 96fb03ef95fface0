"""The Kafka admin requests the switch needs and aiokafka 0.14 does not offer.

aiokafka's admin client has no ACL calls for Kafka 4 (which only accepts CreateAcls v2+,
the flexible versions) and no AlterUserScramCredentials. Both are small, documented
requests (KIP-482 flexible encoding, KIP-554), so they are declared here with aiokafka's
own protocol types and sent through its client, which negotiates the version. The SCRAM
salted password is PBKDF2-HMAC-SHA-512 (RFC 5802/7677) from the standard library.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from switch.errors import SwitchError

# Resource types, pattern types, operations and permissions (Kafka's AclOperation etc.).
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5
LITERAL, PREFIXED = 3, 4
ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 2, 3, 4, 5, 6, 7, 8
DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 10, 11, 12
ALLOW = 3
SCRAM_SHA_512 = 2
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Acl:
    """An ALLOW rule: `principal` may do `operation` on the resource."""

    resource_type: int
    name: str
    pattern: int
    principal: str
    operation: int
    host: str = "*"


class CreateAclsResponse_v2(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 2
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("error_code", Int16), ("error_message", CompactString("utf-8")),
                                 ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class CreateAclsResponse_v3(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = CreateAclsResponse_v2.SCHEMA


_CREATIONS = CompactArray(
    ("resource_type", Int8), ("resource_name", CompactString("utf-8")),
    ("resource_pattern_type", Int8), ("principal", CompactString("utf-8")),
    ("host", CompactString("utf-8")), ("operation", Int8), ("permission_type", Int8),
    ("tags", TaggedFields),
)


class CreateAclsRequest_v2(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 2
    RESPONSE_TYPE = CreateAclsResponse_v2
    SCHEMA = Schema(("creations", _CREATIONS), ("tags", TaggedFields))


class CreateAclsRequest_v3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = CreateAclsResponse_v3
    SCHEMA = CreateAclsRequest_v2.SCHEMA


_CreateAclsStruct: TypeAlias = CreateAclsRequest_v2 | CreateAclsRequest_v3


class CreateAcls(Request[_CreateAclsStruct]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self._acls = acls

    def build(self, request_struct_class: type[_CreateAclsStruct]) -> _CreateAclsStruct:
        return request_struct_class(
            [(a.resource_type, a.name, a.pattern, a.principal, a.host, a.operation, ALLOW, {})
             for a in self._acls], {})


class AlterScramResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("user", CompactString("utf-8")), ("error_code", Int16),
                                 ("error_message", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterScramRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterScramResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8),
                                   ("tags", TaggedFields))),
        ("upsertions", CompactArray(
            ("name", CompactString("utf-8")), ("mechanism", Int8), ("iterations", Int32),
            ("salt", CompactBytes), ("salted_password", CompactBytes), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterScram(Request[AlterScramRequest_v0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, str]], deletions: list[str]) -> None:
        self._up = upsertions
        self._del = deletions

    def build(self, request_struct_class: type[AlterScramRequest_v0]) -> AlterScramRequest_v0:
        ups: list[tuple[Any, ...]] = []
        for name, password in self._up:
            salt = secrets.token_bytes(32)
            salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            ups.append((name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted, {}))
        return request_struct_class([(n, SCRAM_SHA_512, {}) for n in self._del], ups, {})


async def _send(admin: AIOKafkaAdminClient, request: Request[Any]) -> Any:
    return await admin._send_request(request)


async def create_acls(admin: AIOKafkaAdminClient, acls: list[Acl]) -> None:
    """Create ALLOW ACLs (creating one that exists is harmless). Raises on any refusal."""
    if not acls:
        return
    resp = await _send(admin, CreateAcls(sorted(set(acls))))
    errors = [(code, msg) for code, msg, _ in resp.results if code]
    if errors:
        raise SwitchError(f"the broker refused to create ACLs: {errors[0][1] or errors[0][0]}"
                          + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


async def set_scram_password(admin: AIOKafkaAdminClient, username: str, password: str) -> None:
    """Create or change a SCRAM-SHA-512 user (the new password works at once)."""
    resp = await _send(admin, AlterScram([(username, password)], []))
    for user, code, msg, _ in resp.results:
        if code:
            raise SwitchError(f"the broker refused to set the password of {user}: {msg or code}")


async def delete_scram_user(admin: AIOKafkaAdminClient, username: str) -> None:
    resp = await _send(admin, AlterScram([], [username]))
    for user, code, msg, _ in resp.results:
        if code and code != 91:  # RESOURCE_NOT_FOUND: already gone
            raise SwitchError(f"the broker refused to delete user {user}: {msg or code}")
