"""Shared by every test directory: this file's folder is on sys.path (pytest's default import
mode), so helpers here, such as ray_scratch.py, import by name from any test module."""
