"""Schemas: the change-event envelope, SQL->Avro types, topic names, Confluent wire format, registry."""
