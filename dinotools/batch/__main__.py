"""``python -m dinotools.batch``: see ``dinotools.commands.batch``."""
from dinotools.commands.batch import main

raise SystemExit(main())
