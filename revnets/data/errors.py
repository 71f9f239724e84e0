"""Errors about data files, reported to users as one sentence naming the file."""

from revnets.errors import UserInputError


class DataError(UserInputError):
    """A data file or dataset folder is missing, unreadable or inconsistent."""
