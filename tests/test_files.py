import pytest

from helpdesk.lib.files import clean_filename, guess_content_type


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("invoice\u200b.php\u202e.pdf", "invoice.php.pdf"),  # zero-width and bidi marks go
        ("  .hidden. ", "hidden"),
        ("", "attachment"),
        ("ﬁle.txt", "file.txt"),  # NFKC folds the ligature
    ],
)
def test_clean_filename(raw, clean):
    assert clean_filename(raw) == clean


def test_long_names_keep_their_extension():
    name = clean_filename("a" * 300 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")


def test_content_type_from_declaration_or_name():
    assert guess_content_type("x.pdf", "Application/PDF; name=x.pdf") == "application/pdf"
    assert guess_content_type("x.png") == "image/png"
    assert guess_content_type("noext") == "application/octet-stream"
