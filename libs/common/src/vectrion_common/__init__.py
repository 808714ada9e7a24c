"""Vectrion shared plumbing. No business rules and no ML dependencies live here."""
