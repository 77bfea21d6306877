"""The `omnicascade` command (main.py assembles it): one module per group of commands,
display.py draws the tables, demo.py is `omnicascade demo`."""
