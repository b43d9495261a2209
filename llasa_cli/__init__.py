"""llasa-cli: long-form batch speech synthesis with Llasa and verifier-guided search."""

__version__ = "0.1.0"
