"""The base class of every mistake a user can fix: the CLI prints it without a traceback."""


class UserFacingError(Exception):
    pass
