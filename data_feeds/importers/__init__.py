"""Importers for grids (GeoJSON), the catalogue, departments and workers (CSV).

Each validates the whole file first and refuses it with the line or feature and field at
fault; a good file is applied in one transaction and can be applied again.
"""
