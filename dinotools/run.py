"""``python -m dinotools.run``: see ``dinotools.cli``."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
