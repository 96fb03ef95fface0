"""The simulated systems of record, LEADS and NCIC: a store each, the domain rules over
it (`rules`), simulation controls (`controls`), and a thin Kafka loop (`loop`).

The Kafka-free parts are importable without aiokafka; `run_service` lives in
`services.loop`.
"""
