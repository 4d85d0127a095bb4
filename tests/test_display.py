"""aiterms.display: the Markdown tables of the chapter pages."""
from aiterms.display import markdown_table


def test_table_with_a_pipe_inside_a_cell():
    assert markdown_table(["a", "b"], [(1, "`x|y`")]) == "| a | b |\n|---|---|\n| 1 | `x\\|y` |"


def test_html_escaping_keeps_special_tokens_visible():
    assert markdown_table(["t"], [("<eos>|",)], escape_html=True) == "| t |\n|---|\n| &lt;eos&gt;&#124; |"
