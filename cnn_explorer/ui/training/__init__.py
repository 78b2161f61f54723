"""The training tab's widgets."""
