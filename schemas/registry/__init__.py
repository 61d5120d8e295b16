"""Confluent Schema Registry compatible HTTP service (Avro only).

Huiliu ships its own registry so development and tests need no Confluent or
Karapace server; production points the same clients at a real registry, which
is why every route and error code here follows Confluent's wire format.
"""
