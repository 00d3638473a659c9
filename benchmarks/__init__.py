"""asv benchmark suite of dinotools (see asv.conf.json)."""
