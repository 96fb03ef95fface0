"""The operator console: reading `switch.replies` and showing it to people.

Pure parts (no Kafka): `filters` (which replies to show), `render` (how they look),
`state` (the bounded memory of a long-running console: supplement links and counts),
`images` (saving QIM images by IMN). The one Kafka loop is `tail`.
"""
