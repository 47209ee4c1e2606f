"""Shared test fixtures: Pulumi mocks that record every registered resource, and stack config loading."""
