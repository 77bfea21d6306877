"""The mistakes a user or operator can fix: the CLI prints them without a traceback."""


class UserFacingError(Exception):
    """A mistake the user can fix (bad input, an unknown id)."""


class ConfigError(UserFacingError):
    """A configuration mistake the operator must fix."""


class NotFound(UserFacingError, LookupError):
    """An id (run, customer, promo code) that does not exist."""
