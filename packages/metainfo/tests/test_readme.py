"""The README's example runs as written."""

import re
from pathlib import Path


def test_readme_example_runs(capsys: object) -> None:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    exec(compile(code.group(1), "README.md", "exec"), {})
