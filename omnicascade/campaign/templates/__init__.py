"""Message templates: loading/validating template files and rendering them safely."""
