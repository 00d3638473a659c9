"""``python -m dinotools.run``: see ``dinotools.commands.run``."""
from dinotools.commands.run import main

if __name__ == "__main__":
    raise SystemExit(main())
