"""The web console (控制台): server-rendered pages under /console over the JSON API (README.md)."""
