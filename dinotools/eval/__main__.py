"""Entry point of ``python -m dinotools.eval``."""
from dinotools.commands.eval import main

raise SystemExit(main())
