"""One lane of the gate: its devices, its worker and the passage pipeline."""
