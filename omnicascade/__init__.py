"""omnicascade: durable campaign cascades that stop the moment a customer converts."""

__version__ = "0.1.0"
