"""The submission zip holds the prediction files byte for byte, deterministically."""

import zipfile

from pipeline.cli import main


def make_predictions(folder):
    folder.mkdir()
    files = {"sst-dev-output.csv": b"id \t Predicted_Sentiment \na , 3 \n",
             "sts-test-output.csv": b"id \t Predicted_Similiary \nb , 2.5000 \n"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "notes.txt").write_text("not part of the submission")
    return files


def test_zip_holds_every_prediction_file_unchanged(tmp_path):
    files = make_predictions(tmp_path / "predictions")
    out = tmp_path / "sub.zip"
    assert main(["submit", "--predictions", str(tmp_path / "predictions"),
                 "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [f"predictions/{n}" for n in sorted(files)]
        for name, data in files.items():
            assert zf.read(f"predictions/{name}") == data
    first = out.read_bytes()
    main(["submit", "--predictions", str(tmp_path / "predictions"), "--out", str(out)])
    assert out.read_bytes() == first  # same files, same zip


def test_missing_folder_and_foreign_files_are_user_errors(tmp_path, capsys):
    assert main(["submit", "--predictions", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "s.zip")]) == 2
    assert "error: predictions folder not found" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sst-dev-output.csv").write_text("id,prediction\na,3\n")
    assert main(["submit", "--predictions", str(bad), "--out", str(tmp_path / "s.zip")]) == 2
    assert "not a CS224N prediction file" in capsys.readouterr().err
    assert not (tmp_path / "s.zip").exists()
