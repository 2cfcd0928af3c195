"""microseg: customer micro-segmentation engine and customer data platform."""

__version__ = "0.1.0"
