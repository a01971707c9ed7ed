"""The project image and the local cluster's images, built with Docker without a registry."""
