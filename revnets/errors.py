"""The errors users see: one sentence that names the file or argument and what was expected."""


class RevnetsError(Exception):
    """Base of every error revnets reports to a user as one line (the command exits with code 2)."""


class InputError(RevnetsError, ValueError):
    """Bad input from a user (file, shape, argument): reported as one line, exit code 2, no traceback."""


UserInputError = InputError
