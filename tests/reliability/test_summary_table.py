from tests.reliability import summary


def test_table_lists_every_scenario_and_totals() -> None:
    before = list(summary.ROWS)
    summary.ROWS[:] = []  # rows of scenarios that ran earlier in this session stay out
    try:
        summary.record("a", faults=3, passages=10, rows=10, delivered=10)
        summary.record("b", faults=2, lost=1, note="x")
        lines = summary.table()
        assert lines[0].split()[:3] == ["scenario", "faults", "passages"]
        assert any(line.startswith("a ") for line in lines)
        assert lines[-1].endswith("lost 1") and "faults injected 5" in lines[-1]
    finally:
        summary.ROWS[:] = before
