"""The explorer tab's widgets."""
