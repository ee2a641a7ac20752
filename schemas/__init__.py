"""Curated TFDV schemas and artifact property schemas, shipped as package data."""
