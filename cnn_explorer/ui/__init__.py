"""Widgets only: they show the explorer's and the training session's state and turn
gestures into intents; no logic of their own."""
