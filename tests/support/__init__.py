"""Helpers that test modules share (never imported by the runtime): `identity` (users, sign-in, a
keyed API process), `cdc` (drive a log-CDC runtime, replay its topic), `department_files` (files as
departments send them), `pipelines` (a sample pipeline document), `cli` (the `huiliu` command as a
subprocess), `console` (Chromium for the console's browser tests). Test modules import these, never each other."""
