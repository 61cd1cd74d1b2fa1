"""Label readers: rows keep their line numbers; every bad row is named by file and line."""

from __future__ import annotations

import pytest

from aqakit.data.labels import read_csv_table, read_whitespace_table, scored_ids
from aqakit.errors import DataError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_whitespace_without_header_keeps_lines_and_first_row(tmp_path):
    path = write(tmp_path, "train.txt", "1 28.71 29.36 1\n\n3\t28.79  27.89 1\n5 32.2 28.9 0")  # no final newline
    table = read_whitespace_table(path, header=False, n_columns=4)
    assert table.header is None
    assert [r[0] for r in table.rows] == ["1", "3", "5"]
    assert table.lines == [1, 3, 4]
    labels = scored_ids(table, 0, 2)
    assert labels.ids == ["1", "3", "5"] and list(labels.scores) == [29.36, 27.89, 28.9]
    assert labels.lines == [1, 3, 4]


def test_whitespace_with_header_and_trailing_blank_lines(tmp_path):
    path = write(tmp_path, "t.txt", "name  a\tb\nx 1 2\ny 3 4\n\n\n")
    table = read_whitespace_table(path, header=True)
    assert table.header == ["name", "a", "b"] and table.lines == [2, 3]
    assert table.column("B") == 2


def test_non_numeric_score(tmp_path):
    path = write(tmp_path, "train.txt", "a 1\nb 2\nc abc\n")
    table = read_whitespace_table(path, header=False, n_columns=2)
    message = error_of(scored_ids, table, 0, 1)
    assert message == f"{path} line 3: score 'abc' is not a number"


def test_nan_score(tmp_path):
    table = read_whitespace_table(write(tmp_path, "s.txt", "a 1\nb nan\n"), header=False)
    message = error_of(scored_ids, table, 0, 1)
    assert "s.txt line 2" in message and "NaN" in message


def test_inf_score(tmp_path):
    table = read_whitespace_table(write(tmp_path, "s.txt", "a inf\n"), header=False)
    assert "s.txt line 1" in error_of(scored_ids, table, 0, 1)


def test_wrong_column_count_without_header(tmp_path):
    path = write(tmp_path, "train.txt", "1 2 3 4\n2 2 3 4\n3 2 3\n")
    message = error_of(read_whitespace_table, path, header=False, n_columns=4)
    assert "train.txt line 3" in message and "3 columns" in message and "expected 4" in message


def test_wrong_column_count_inferred_from_first_row(tmp_path):
    path = write(tmp_path, "t.txt", "a 1\nb 2 9\n")
    assert "t.txt line 2" in error_of(read_whitespace_table, path, header=False)


def test_wrong_column_count_with_header(tmp_path):
    path = write(tmp_path, "t.txt", "id score\na 1\nb\n")
    message = error_of(read_whitespace_table, path, header=True)
    assert "t.txt line 3" in message and "expected 2" in message


def test_duplicate_ids_name_both_lines(tmp_path):
    table = read_whitespace_table(write(tmp_path, "d.txt", "a 1\nb 2\n\na 3\n"), header=False)
    message = error_of(scored_ids, table, 0, 1)
    assert "d.txt line 4" in message and "'a'" in message and "line 1" in message


def test_missing_file(tmp_path):
    message = error_of(read_whitespace_table, tmp_path / "none.txt", header=False)
    assert "none.txt" in message and "not found" in message


def test_file_without_rows(tmp_path):
    assert "no data rows" in error_of(read_whitespace_table, write(tmp_path, "h.txt", "a b\n\n"), header=True)
    assert "empty" in error_of(read_whitespace_table, write(tmp_path, "e.txt", "\n \n"), header=True)


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"a 1\n\xff\xfe 2\n")
    assert "bin.txt" in error_of(read_whitespace_table, path, header=False)


def test_csv_with_header_bom_quotes_and_blank_lines(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text('\ufeffid, score ,split\n"a",1.5,train\n\nb , 2,test\r\nc,3,train')
    table = read_csv_table(path)
    assert table.header == ["id", "score", "split"]
    assert table.rows == [["a", "1.5", "train"], ["b", "2", "test"], ["c", "3", "train"]]
    assert table.lines == [2, 4, 5]
    labels = scored_ids(table, table.column("id"), table.column("score"), keep=[True, False, True])
    assert labels.ids == ["a", "c"] and labels.lines == [2, 5]


def test_csv_wrong_column_count(tmp_path):
    path = write(tmp_path, "l.csv", "id,score\na,1\nb,2,extra\n")
    message = error_of(read_csv_table, path)
    assert "l.csv line 3" in message and "3 columns" in message


def test_csv_missing_column(tmp_path):
    table = read_csv_table(write(tmp_path, "l.csv", "name,score\na,1\n"))
    message = error_of(table.column, "id")
    assert "l.csv" in message and "'id'" in message and "name, score" in message


def test_empty_id(tmp_path):
    table = read_csv_table(write(tmp_path, "l.csv", "id,score\na,1\n,2\n"))
    assert "l.csv line 3" in error_of(scored_ids, table, 0, 1)
