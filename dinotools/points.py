"""``python -m dinotools.points``: point tracking from the command line (see ``dinotools.commands.points``)."""
from dinotools.commands.points import entry

if __name__ == "__main__":
    entry()
