"""The wire contract as code: message types, validation, text form. Imports no Kafka."""
