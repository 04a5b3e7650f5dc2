"""grebond: bond GRETAP tunnels over an encrypted underlay, from one model for both ends."""

__version__ = "0.1.0"
