"""The neuromorphic engine: spike encoding, spiking/echo-state reservoirs, pattern detection."""
