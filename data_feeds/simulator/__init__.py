"""Simulated district traffic on the Redis feeds (``python app.py simulate``).

Reads the district once from the grid database and never writes it (``world``), then
publishes in real time, through the feed contract, what the district's systems would publish:

* ``patrol-gps`` (``patrol_gps``): grid workers on their two daily rounds, each device
  reporting a WGS-84 position every few seconds;
* ``case-events`` (``case_traffic``): cases from every channel through their whole life, by
  the case model the demo's history is made with (``data_feeds.case_model``).

``simulation.Simulation`` holds the district's state and advances it to a given time
(deterministic for a seed); ``publishing.run`` is the thin loop that reads the clock,
advances the simulation to "now" and publishes with pipelined XADD; ``command_line`` is the
command. Everything published is accepted by the consumer; ``--noise`` adds deliberately bad
input (GPS glitches outside the district, multipath jumps, repeated messages).
"""
