"""The quantum engine: Hamiltonians, exact evolution, quantum reservoir, Ising optimiser."""
