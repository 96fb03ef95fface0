"""Who sent a request, and may it send for that ORI? (pure; the router's loop applies it)

A Kafka consumer is never told which principal produced a record, so the broker tells us
by topic: only agency NAME may write `<prefix>.agency.NAME.requests` (ACL), so a record
there was sent by NAME. A record the router forwards to `<prefix>.requests.byori` (to the
partition owning its ORI) keeps its sender in the `switch-principal` header, which is
trusted because only the switch's components may write that topic; the header is never
read from, and never forwarded for, a record of the public `<prefix>.requests` topic, which
only trusted principals (operators, load testers, the switch) may write on a secured broker.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from switch.contract.messages import Codes, FieldError
from switch.security.agencies import Binding, binding_decoder
from switch.settings import TopicSettings

PRINCIPAL_HEADER = "switch-principal"
TRUSTED = "trusted"  # the audit's name for a request on the public requests topic


class Bindings:
    """The agencies' ORI bindings, from the compacted `<prefix>.agencies` topic."""

    def __init__(self) -> None:
        self._by_name: dict[str, Binding] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Binding | None:
        return self._by_name.get(name)

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record of the agencies topic (a tombstone removes); False if unreadable."""
        if value is None:
            if key:
                self._by_name.pop(key.decode(errors="replace"), None)
            return True
        try:
            b = binding_decoder.decode(value)
        except msgspec.DecodeError:
            return False
        self._by_name[b.name] = b
        return True


def sender_of(
    topic: str, headers: Sequence[tuple[str, bytes]] | None, topics: TopicSettings
) -> str | None:
    """The agency that sent a record read on `topic`, or None for a trusted principal."""
    if topic == topics.requests:
        return None
    if topic == topics.requests_byori:
        for k, v in headers or ():
            if k == PRINCIPAL_HEADER and v:
                return v.decode(errors="replace")
        return None
    return topics.agency_of(topic)


def forward_headers(agency: str | None) -> list[tuple[str, bytes]] | None:
    """Headers of a request forwarded to requests.byori: its sender, when an agency."""
    return [(PRINCIPAL_HEADER, agency.encode())] if agency else None


def principal_name(agency: str | None, secure: bool) -> str | None:
    """What the audit records as the request's principal."""
    if agency is not None:
        return f"User:agency-{agency}"
    return TRUSTED if secure else None


def reply_topic(agency: str | None, reply_to: str | None, topics: TopicSettings) -> str | None:
    """Where the replies to this request go: an agency's always to its own reply topic."""
    return topics.agency_replies(agency) if agency is not None else reply_to


def authorize(
    agency: str | None, ori: str | None, mke: str | None, reply_to: str | None,
    bindings: Bindings, topics: TopicSettings,
) -> FieldError | None:
    """None when the sender may send this request; else the NOT_AUTHORIZED error."""
    if agency is None:
        return None
    mke = mke or "???"
    principal = f"User:agency-{agency}"
    b = bindings.get(agency)
    if b is None:
        return FieldError(field="ori", code=Codes.NOT_AUTHORIZED,
                          text=f"REJECT MKE/{mke} PRINCIPAL {principal} HAS NO ORI BINDING: "
                          "AN OPERATOR MUST RUN SWITCH AGENCY ADD")
    if ori not in b.oris:
        return FieldError(field="ori", code=Codes.NOT_AUTHORIZED,
                          text=f"REJECT MKE/{mke} ORI/{ori} IS NOT BOUND TO PRINCIPAL "
                          f"{principal}, WHICH MAY SEND FOR {' '.join(b.oris)} ONLY")
    own = topics.agency_replies(agency)
    if reply_to is not None and reply_to != own:
        return FieldError(field="reply_to", code=Codes.NOT_AUTHORIZED,
                          text=f"REJECT MKE/{mke} REPLY_TO {reply_to[:100]} IS NOT AUTHORIZED "
                          f"FOR {principal}: ITS REPLIES GO TO {own}")
    return None
