"""The commands layer: the only code that parses arguments, prints, or chooses exit codes.

One module per ``python -m dinotools.X`` command; ``common`` holds what they share (the parser,
the KEY=VALUE parser, logging, and the one exception -> exit-code path).
"""
