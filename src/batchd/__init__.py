"""batchd: a self-hosted batch workflow service speaking the EnOS Batch Processing Service API v2.1."""

__version__ = "0.1.0"
