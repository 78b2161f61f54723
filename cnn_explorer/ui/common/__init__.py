"""Widgets and helpers shared by both tabs."""
