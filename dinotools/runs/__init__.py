"""One video in, files out: settings, building components, preflight checks, the run record and
resume, writing, the report. Used by the commands and by batch/eval; never parses arguments."""
