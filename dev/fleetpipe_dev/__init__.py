"""FleetPipe's developer tools: never imported by the services, the operator or the load test."""
