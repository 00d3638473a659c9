"""``python -m dinotools.points``: point tracking from the command line (see ``dinotools.points_cli``)."""
from .points_cli import entry

if __name__ == "__main__":
    entry()
