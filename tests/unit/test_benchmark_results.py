from benchmarks import write_section


def test_a_benchmark_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "results.md"
    write_section("a", "## A\nfirst", path)
    write_section("b", "## B\nother", path)
    write_section("a", "## A\nsecond", path)
    text = path.read_text()
    assert "second" in text and "first" not in text and "## B\nother" in text
    assert text.index("## A") < text.index("## B")  # a section keeps its place
    assert text.startswith("# Benchmark results")
