"""chatsvc: a self-hosted, line-based chat server built on Twisted."""

__version__ = "0.1.0"
