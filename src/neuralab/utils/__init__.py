"""Small helpers, one concern per module."""
