"""Test-only helpers: WCAG audits (axe.py), hand-drawn marks (marks.py). The throwaway servers
live in devtools/services.py."""
