"""What every benchmark section ends with: its targets, met or missed, and its plot."""


def targets_and_plot(checks: list[tuple[str, bool]], image: str, label: str) -> list[str]:
    """Markdown lines listing each (claim, met) and showing ``image`` (a file beside it)."""
    lines = ["", "Targets:", ""]
    lines += [f"- {'met' if met else 'MISSED'}: {claim}" for claim, met in checks]
    return [*lines, "", f"![{label}]({image})", ""]
