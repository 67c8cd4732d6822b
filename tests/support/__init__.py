"""Test-only helpers: throwaway real servers (Postgres, Redis, Azurite) and tool paths."""
