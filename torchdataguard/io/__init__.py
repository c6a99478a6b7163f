"""Readers for corpus scans."""
from .readers import count_records, detect_format, read_records

__all__ = ["count_records", "detect_format", "read_records"]
