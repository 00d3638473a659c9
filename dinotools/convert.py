"""``python -m dinotools.convert``: see ``dinotools.commands.convert``."""
from dinotools.commands.convert import main

if __name__ == "__main__":
    raise SystemExit(main())
