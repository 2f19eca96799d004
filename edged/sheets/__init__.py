"""Tables that leave the box: XLSX and CSV an inspector opens in Excel or WPS.

One table model (:mod:`edged.sheets.table`: columns with a kind, rows of plain
values) and two writers: :mod:`edged.sheets.xlsx` streams real date, number
and percentage cells with fitted widths, a frozen bold header and a filter;
:mod:`edged.sheets.csvout` writes the same tables as UTF-8 CSV with a BOM.
Both make every text cell spreadsheet-safe (:func:`edged.sheets.table.safe_text`).
Reports, the national ledger tables and the data logger's export all use them.
"""
