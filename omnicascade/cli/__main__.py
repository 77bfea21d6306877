"""`python -m omnicascade.cli`."""
from omnicascade.cli.main import main

main()
