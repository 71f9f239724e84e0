"""The error users see: one sentence that names the file or argument and what was expected."""


class UserInputError(ValueError):
    """Bad input from a user (file, shape, argument): reported as one line, exit code 2, no traceback."""
