"""Who may do what on the secured broker (pure), and applying it.

Super users (`super.users`): `broker`, `controller` and `admin` only.

Switch components (`router`, `correlator`, `leads`, `ncic`) and `operator`: every
operation on every topic, consumer group and transactional id (literal `*`), and DESCRIBE
on the cluster. They are the switch, so they are trusted with all its topics; a production
cluster would narrow them to their own topic prefix (see docs/SECURITY.md).

An agency `NAME` (principal `User:agency-NAME`), for a topic prefix P:
- WRITE, DESCRIBE on topic `P.agency.NAME.requests` (literal): the only topic it may write;
  the broker, not the agency, thereby names the sender of every record there;
- READ, DESCRIBE on topic `P.agency.NAME.replies` (literal): the only topic it may read;
- READ on consumer groups and WRITE, DESCRIBE on transactional ids starting with
  `P.agency.NAME.` (prefixed), so it can commit offsets and use transactions of its own.
Nothing else: not `P.requests`, `P.replies`, the internal topics, `P.audit` or `P.control`.
"""

from __future__ import annotations

from switch.security.adminapi import (
    ALL,
    CLUSTER,
    DESCRIBE,
    GROUP,
    LITERAL,
    PREFIXED,
    READ,
    TOPIC,
    TRANSACTIONAL_ID,
    WRITE,
    Acl,
)
from switch.security.users import COMPONENTS, OPERATOR, agency_user
from switch.settings import TopicSettings


def user(name: str) -> str:
    return f"User:{name}"


def trusted_acls() -> list[Acl]:
    out: list[Acl] = []
    for name in (*COMPONENTS, OPERATOR):
        p = user(name)
        out += [Acl(TOPIC, "*", LITERAL, p, ALL), Acl(GROUP, "*", LITERAL, p, ALL),
                Acl(TRANSACTIONAL_ID, "*", LITERAL, p, ALL),
                Acl(CLUSTER, "kafka-cluster", LITERAL, p, DESCRIBE)]
    return out


def agency_requests(prefix: str, name: str) -> str:
    return TopicSettings(prefix=prefix).agency_requests(name)


def agency_replies(prefix: str, name: str) -> str:
    return TopicSettings(prefix=prefix).agency_replies(name)


def agency_id_prefix(prefix: str, name: str) -> str:
    """Consumer groups and transactional ids of the agency start with this."""
    return f"{prefix}.agency.{name}."


def agency_acls(prefix: str, name: str) -> list[Acl]:
    p = user(agency_user(name))
    req, rep, ids = agency_requests(prefix, name), agency_replies(prefix, name), \
        agency_id_prefix(prefix, name)
    return [
        Acl(TOPIC, req, LITERAL, p, WRITE), Acl(TOPIC, req, LITERAL, p, DESCRIBE),
        Acl(TOPIC, rep, LITERAL, p, READ), Acl(TOPIC, rep, LITERAL, p, DESCRIBE),
        Acl(GROUP, ids, PREFIXED, p, READ),
        Acl(TRANSACTIONAL_ID, ids, PREFIXED, p, WRITE),
        Acl(TRANSACTIONAL_ID, ids, PREFIXED, p, DESCRIBE),
    ]
