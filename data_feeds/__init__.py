"""Where data comes from: the grid database, Redis streams, importers and the simulator."""
