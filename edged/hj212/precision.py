"""How many decimals each factor is written with.

Peers read HJ 212 numbers with patterns like ``-Avg=(\\d+(\\.\\d+)?)``, and
people compare them with the meter's display, so a value goes out as
fixed-point text with the precision its quantity is measured to: configured
per factor code (``[hj212] decimals``), else taken from the factor's unit,
else :data:`edged.hj212.codec.AUTO_DECIMALS` with trailing zeros dropped.
The unit table follows the resolution of the meters the data-logger guide
lists (electrical, temperature, pressure, flow) and HJ 212's concentration
data (mg/m³, mg/L to 0.001).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

UNIT_DECIMALS: dict[str, int] = {
    # concentrations
    "mg/m3": 3,
    "mg/m³": 3,
    "ug/m3": 1,
    "μg/m3": 1,
    "μg/m³": 1,
    "mg/l": 3,
    "mg/L": 3,
    "ppm": 3,
    "ppb": 1,
    # electrical
    "V": 1,
    "kV": 3,
    "A": 2,
    "mA": 1,
    "W": 1,
    "kW": 3,
    "kVA": 3,
    "kvar": 3,
    "kWh": 2,
    "kVarh": 2,
    "kvarh": 2,
    "Hz": 2,
    "PF": 3,
    # process
    "℃": 1,
    "°C": 1,
    "degC": 1,
    "%": 1,
    "%RH": 1,
    "Pa": 0,
    "kPa": 2,
    "MPa": 3,
    "m/s": 2,
    "m3/h": 2,
    "m³/h": 2,
    "m3/s": 3,
    "m³/s": 3,
    "m3": 2,
    "m³": 2,
    "L/s": 2,
    "t/h": 2,
    "t": 3,
    "kg": 2,
    "rpm": 0,
    "r/min": 0,
    "pH": 2,
    "dB": 1,
    "dB(A)": 1,
}


def unit_decimals(unit: str) -> int | None:
    """Decimals for a unit as written in the register map, or None when unknown."""
    text = unit.strip()
    if text in UNIT_DECIMALS:
        return UNIT_DECIMALS[text]
    lowered = {k.lower(): v for k, v in UNIT_DECIMALS.items()}
    return lowered.get(text.lower())


def resolve(
    configured: Mapping[str, int], units: Mapping[str, str] | Iterable[tuple[str, str]] = ()
) -> dict[str, int]:
    """Factor code -> decimals: configured ones win, the rest from known units."""
    pairs = units.items() if isinstance(units, Mapping) else units
    out: dict[str, int] = {}
    for code, unit in pairs:
        places = unit_decimals(unit)
        if places is not None:
            out[code] = places
    out.update(configured)
    return out
