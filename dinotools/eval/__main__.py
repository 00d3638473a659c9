"""Entry point of ``python -m dinotools.eval``."""
from .cli import main

raise SystemExit(main())
