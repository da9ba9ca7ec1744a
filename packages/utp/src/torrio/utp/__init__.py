"""torrio-utp: uTP (BEP 29) streams with LEDBAT congestion control for trio."""

__version__ = "0.1.0"

__all__: list[str] = []
