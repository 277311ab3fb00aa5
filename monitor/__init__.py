"""monitor: a media-monitoring ingestion daemon for Moroccan AI, cyber and digital policy news."""

__version__ = "0.1.0"
USER_AGENT = f"monitor/{__version__} (news monitoring of Moroccan digital policy)"
