"""The dead-letter topic for people: list by reason and source, show one decoded, replay
selected records to their source topic after a fix (``fleetpipe deadletters ...``)."""
