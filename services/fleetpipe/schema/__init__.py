"""The pipeline's schema as a whole: every component's migrations and the service roles'
grants, applied by the schema's owner (``fleetpipe db migrate``)."""
