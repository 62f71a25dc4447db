"""Power meters: joulescope (live), simulated, trace (recorded file)."""
