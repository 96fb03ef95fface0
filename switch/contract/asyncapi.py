"""The AsyncAPI 3.0 document of the public topics, generated from the contract's types.

It describes what CONTRACT.md describes, machine-readably: the five public topics as
channels, their messages with the same schemas as `schemas/*.schema.json` (built by
`jsonschema.schema_for`, so field rules, patterns and examples are the same), the
correlation (`mid` on a request, `mid` and `cid` on its reply) and the reply address
(`reply_to`, else `switch.replies`). Operations are written from the switch's side: it
receives requests and control commands, and sends replies, dead letters and audit entries.

AsyncAPI's schema object is JSON Schema draft 07 with extensions, so the 2020-12 schemas
are adapted: `$defs` move to `components.schemas` (references rewritten), and the
OpenAPI-style `discriminator` object is dropped (the `mke` of each branch already tells
them apart). `switch schemas` writes it to `schemas/asyncapi.json`; a test fails when the
committed file is stale, and validates it with the reference parser (tools/asyncapi).
"""

from __future__ import annotations

import json
from typing import Any

from switch.contract.jsonschema import SCHEMAS, schema_for

ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
FILE_NAME = "asyncapi.json"
KAFKA_BINDING = "0.5.0"

# name -> (channel id, message name, key description, summary)
_CHANNELS: dict[str, tuple[str, str, str, str]] = {
    "request": ("requests", "Request", "the producer's choice; its ORI is recommended (or the LNO)",
                "A format message from an agency: EIM enter, MII modify, XIM cancel, QIM query."),
    "reply": ("replies", "Reply", "the request's ORI",
              "Exactly one reply for every readable request, plus supplements."),
    "dead-letter": ("deadLetters", "DeadLetter", "as received (cut to 256 bytes, image data redacted)",
                    "Input that is not a readable request, with the reason."),
    "audit-entry": ("audit", "AuditEntry", "the correlation id (cid)",
                    "Who did what, when, with which outcome; never the image bytes."),
    "control": ("control", "Control", "the system name (LEADS or NCIC); the topic is compacted",
                "A simulation control for a system of record (up, down_forward, down_drop, "
                "latency, reject rate)."),
}


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            elif key == "discriminator" and isinstance(value, dict):
                continue  # OpenAPI's object form; AsyncAPI's is a plain property name
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _payload_and_defs(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = schema_for(name)
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    return _rewrite_refs(schema), {k: _rewrite_refs(v) for k, v in defs.items()}


def document(prefix: str = "switch") -> dict[str, Any]:
    """The AsyncAPI document, with topic names under `prefix` (the default is CONTRACT.md's)."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    for name, (channel, message, key, summary) in _CHANNELS.items():
        _, topic = SCHEMAS[name]
        address = prefix + topic.removeprefix("switch")
        payload, defs = _payload_and_defs(name)
        for def_name, def_schema in defs.items():
            if schemas.setdefault(def_name, def_schema) != def_schema:
                raise ValueError(f"two different schemas named {def_name}")
        msg: dict[str, Any] = {
            "name": message,
            "title": message,
            "summary": summary,
            "contentType": "application/json",
            "payload": payload,
            "bindings": {"kafka": {"key": {"type": "string", "description": key},
                                   "bindingVersion": KAFKA_BINDING}},
        }
        if name == "request":
            msg["correlationId"] = {
                "description": "The producer's message id: the idempotency key (the same mid and "
                "content is answered with the original reply, marked duplicate) and what the "
                "reply echoes. Remembered for at least 24 hours, per agency (ORI).",
                "location": "$message.payload#/mid",
            }
        elif name == "reply":
            msg["correlationId"] = {
                "description": "The request's mid (null only if it could not be read); `cid`, the "
                "switch's correlation id, links a supplement to its first reply.",
                "location": "$message.payload#/mid",
            }
        messages[message] = msg
        channels[channel] = {
            "address": address,
            "title": address,
            "description": f"`{address}`: {summary} Key: {key}.",
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
            "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING}},
        }
    replies = channels["replies"]["address"]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "switch-sim: LEADS/NCIC image transaction switch",
            "version": CONTRACT_VERSION,
            "description": "The public topics of the switch (CONTRACT.md, version 1). Values are "
            "UTF-8 JSON; unknown fields are ignored, so the contract can grow. Topic names "
            f"start with a configurable prefix (here `{prefix}`). Generated from the "
            "contract's message types by `switch schemas`; do not edit.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The local broker of `switch broker start` / `switch up`.",
            },
        },
        "channels": channels,
        "operations": {
            "receiveRequest": {
                "action": "receive",
                "title": "The router reads a request",
                "summary": "Validated, routed to LEADS and NCIC, and answered exactly once.",
                "channel": {"$ref": "#/channels/requests"},
                "messages": [{"$ref": "#/channels/requests/messages/Request"}],
                "reply": {
                    "address": {
                        "location": "$message.payload#/reply_to",
                        "description": f"The request's `reply_to` (a topic starting with `{replies}`), "
                        f"else `{replies}`.",
                    },
                    "channel": {"$ref": "#/channels/replies"},
                    "messages": [{"$ref": "#/channels/replies/messages/Reply"}],
                },
            },
            "sendReply": {
                "action": "send",
                "title": "The switch answers",
                "summary": "COMPLETE, PARTIAL, PENDING or REJECTED; supplements follow a PENDING "
                "or PARTIAL reply with the same cid.",
                "channel": {"$ref": "#/channels/replies"},
                "messages": [{"$ref": "#/channels/replies/messages/Reply"}],
            },
            "sendDeadLetter": {
                "action": "send",
                "title": "Unreadable input is set aside",
                "channel": {"$ref": "#/channels/deadLetters"},
                "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
            },
            "sendAuditEntry": {
                "action": "send",
                "title": "Every component audits what it did",
                "channel": {"$ref": "#/channels/audit"},
                "messages": [{"$ref": "#/channels/audit/messages/AuditEntry"}],
            },
            "receiveControl": {
                "action": "receive",
                "title": "The simulated systems take control commands",
                "channel": {"$ref": "#/channels/control"},
                "messages": [{"$ref": "#/channels/control/messages/Control"}],
            },
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def render(prefix: str = "switch") -> str:
    return json.dumps(document(prefix), indent=2) + "\n"
