"""A bare consume → produce passthrough on the core loop.

It is the baseline B every performance figure is compared with, and the worker the core loop's
crash tests kill. It copies each record's bytes and key to the output topic unchanged.
"""
