"""Erasing one vehicle's or one driver's data from the hot store and every lake layer, with an
audit record of what was erased and why (``fleetpipe erase``)."""
