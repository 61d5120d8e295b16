"""PyFlink runner: windowed dedupe, windowed rule metrics and interval joins (see README.md).

Runs in the separate PyFlink virtualenv (`deploy/flink/setup.py`); import nothing here that
needs the main venv (faust, confluent-kafka).
"""
