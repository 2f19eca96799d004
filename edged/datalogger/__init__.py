"""Data logger (数采仪), acquisition half: Modbus polling, flags, minute/hour/day data.

Start with :class:`edged.datalogger.service.DataLogger`; the uplink reads
through its ``records(cn, begin, end)``.
"""
