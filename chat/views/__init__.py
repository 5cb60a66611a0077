"""The chat's HTTP views: thin, each going through ``chat.access`` and ``chat.services``."""
