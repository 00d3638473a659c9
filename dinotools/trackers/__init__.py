"""Trackers: per-video state plus a step function; the frame loop lives in ``dinotools.pipeline.mask_loop``."""
