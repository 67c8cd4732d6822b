import json

from tests.recognition.test_cli import run_cli


def test_recognize_cheques_from_the_command_line(tmp_path, cheques):
    paths = []
    for i, cheque in enumerate(cheques[:4]):
        path = tmp_path / f"cheque{i}.jpg"
        path.write_bytes(cheque.image)
        paths.append(str(path))
    result = run_cli("--json", "--layout", "cheque", *paths)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["file"] for row in rows] == paths
    exact = 0
    for row, cheque in zip(rows, cheques, strict=False):
        assert row["layout"] == "cheque" and row["text"] == row["fields"]["amount"]["text"]
        assert row["fields"]["amount"]["box"]["width"] > 0
        exact += row["text"] == cheque.amount
    assert exact >= 3


def test_unknown_document_type_is_an_error(tmp_path, cheques):
    path = tmp_path / "c.jpg"
    path.write_bytes(cheques[0].image)
    result = run_cli("--layout", "no_such_form", str(path))
    assert result.returncode != 0 and "no_such_form" in result.stderr
