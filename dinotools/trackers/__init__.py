"""Trackers: per-video state plus a step function; the frame loop lives in ``dinotools.loop``."""
