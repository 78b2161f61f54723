"""The explorer's editable state and its recompute.

Everything here is Qt-free except the two thin shells :mod:`.document` (QObject, undo
stack, timers, thread pool) and :mod:`.commands` (QUndoCommands).
"""
