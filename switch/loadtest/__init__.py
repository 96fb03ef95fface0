"""The load tester: generate traffic, replay it at a rate, capture live traffic.

Pure modules (no Kafka): `traffic` (the file format), `photos` (synthetic JPEGs),
`gen` (lifecycles on seeded records), `schedule` (open-model send times, placeholders,
dependencies), `stats` (HDR histograms and the summary). Kafka I/O: `replay`, `capture`.
"""
