"""Tiny fake scenarios for testing the harness's own plumbing (no framework involved)."""
