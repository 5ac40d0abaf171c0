"""TAM-VT: Transformation-Aware Multi-scale Video Transformer for semi-automatic VOS."""

__version__ = "0.1.0"
