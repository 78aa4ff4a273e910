"""The mail parser on the shared real-world samples, on synthetic mail, and on hostile input."""

import base64
import contextlib
import email
import json
import random
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.parsing import (
    MessageTooLarge,
    ParsedMessage,
    ParseError,
    decode_bytes,
    html_to_text,
    parse_message,
    split_quoted,
)

# /work/main/tests/mailgate/test_parsing.py -> /work/shared/mail-samples
SAMPLES_DIR = Path(__file__).resolve().parents[3] / "shared" / "mail-samples"
OWN_SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES = sorted(SAMPLES_DIR.glob("*.eml")) if SAMPLES_DIR.is_dir() else []
NO_SAMPLES = f"the shared mail samples are not at {SAMPLES_DIR}"
JSON_KEYS = {
    "from_email", "from_name", "to", "cc", "reply_to", "subject", "message_id", "in_reply_to",
    "references", "date", "body_text", "body_html", "attachments", "auto_reply", "bounce",
    "bounce_recipients", "errors",
}  # fmt: skip


def sample(name: str) -> ParsedMessage:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(NO_SAMPLES)
    return parse_message(path.read_bytes())


def sample_bytes(name: str) -> bytes:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(NO_SAMPLES)
    return path.read_bytes()


def attachment(parsed: ParsedMessage, filename: str):
    matches = [item for item in parsed.attachments if item.filename == filename]
    assert matches, [item.filename for item in parsed.attachments]
    return matches[0]


def mail(headers: str, body: str = "Hello.\n") -> bytes:
    head = headers.strip("\n").replace("\n", "\r\n")
    return f"{head}\r\n\r\n{body}".encode()


# --- every sample ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [pytest.param(path, id=path.name) for path in SAMPLES]
    or [pytest.param(None, marks=pytest.mark.skip(reason=NO_SAMPLES))],
)
def test_every_shared_sample_parses_into_json(path):
    parsed = parse_message(path.read_bytes())
    data = parsed.as_json_dict()
    assert data.keys() >= JSON_KEYS
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # no lone surrogates anywhere
    assert "\x00" not in parsed.body_text
    assert "<script" not in parsed.body_html.lower()
    for item in parsed.attachments:
        assert item.filename and item.size == len(item.content)
        assert "content" not in item.as_json_dict()


def test_the_shared_samples_are_there():
    if not SAMPLES_DIR.is_dir():
        pytest.skip(NO_SAMPLES)
    assert len(SAMPLES) >= 40


def test_our_own_samples_parse():
    paths = sorted(OWN_SAMPLES_DIR.glob("*.eml"))
    assert paths
    for path in paths:
        assert isinstance(parse_message(path.read_bytes()), ParsedMessage)


# --- what the samples should give ------------------------------------------------------------


def test_encoded_subject_and_8bit_czech_body():
    parsed = sample("django-helpdesk--all-special-chars.eml")
    assert parsed.subject == "Testovácí email"
    assert parsed.body_text == "íářčšáíéřášč"
    assert parsed.from_email == "timothy.hobbs@auto-mat.cz"
    assert parsed.from_name == "Timothy Hobbs"
    assert parsed.to == ["helpdesk@auto-mat.cz"]
    assert parsed.message_id == "<0fd7067e-2842-5b6c-3548-3cf7e6a1c9ea@auto-mat.cz>"
    assert parsed.date.isoformat() == "2019-03-08T23:40:04+01:00"
    assert parsed.body_html == ""


def test_quoted_printable_alternative_gives_text_and_html():
    parsed = sample("django-helpdesk--quoted_printable.eml")
    assert parsed.subject == "Český test"
    assert parsed.body_text == "Tohle je test českých písmen odeslaných z gmailu."
    assert parsed.body_html == "<div>Tohle je test českých písmen odeslaných z gmailu.</div>"


def test_blank_body_keeps_the_text_attachment():
    parsed = sample("django-helpdesk--blank-body-with-attachment.eml")
    assert parsed.body_text == ""
    assert parsed.subject.startswith("Attachment without body - and a loooo")
    assert parsed.subject.endswith("ong subject")
    baf = attachment(parsed, "baf")
    assert baf.content == b"You shouldn't see this.\n"
    assert (baf.content_type, baf.size, baf.inline) == ("text/plain", 24, False)


def test_pdf_attachment_name_type_and_size():
    parsed = sample("mail-gem--attachment_pdf.eml")
    pdf = attachment(parsed, "broken.pdf")
    assert pdf.content_type == "application/pdf"
    assert pdf.size == 1026 and pdf.content.startswith(b"%PDF-1.4")
    assert parsed.subject == "Another PDF with 🎉 Unicode chars in it 🍿"
    assert parsed.body_text.startswith("Just attaching another PDF, here,")
    assert parsed.to == ["xxxx@xxxx.com"]  # the same address twice, listed once


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("mail-gem--attachment_nonascii_filename.eml", "ciële.txt"),
        ("mail-gem--attachment_with_base64_encoded_name.eml", "This is a test.pdf"),
        ("mail-gem--attachment_with_quoted_filename.eml", "Eelanalüüsi päring.jpg"),
        ("mail-gem--attachment_with_unquoted_name.eml", "This is a test.txt"),
        ("mail-gem--japanese_attachment_long_name.eml", "かきくけこ" * 5 + ".txt"),
    ],
)
def test_attachment_names_are_decoded(name, filename):
    parsed = sample(name)
    assert [item.filename for item in parsed.attachments] == [filename]


def test_rfc2231_name_in_a_charset_that_does_not_fit_still_gives_a_name():
    parsed = sample("mail-gem--attachment_with_encoded_name.eml")
    (mp3,) = parsed.attachments
    assert mp3.filename.startswith("01 Quien Te Dij") and mp3.filename.endswith("at. Pitbull.mp3")
    assert mp3.content_type == "application/octet-stream"


def test_forwarded_message_is_kept_as_an_eml_attachment_not_merged():
    parsed = sample("mail-gem--attachment_message_rfc822.eml")
    assert parsed.body_text == "This is the first part."
    forwarded = attachment(parsed, "ForwardedMessage.eml")
    assert forwarded.content_type == "message/rfc822"
    inner = email.message_from_bytes(forwarded.content)
    assert inner["Subject"] == "Another PDF"
    assert "Just attaching another PDF" not in parsed.body_text
    assert (parsed.bounce, parsed.bounce_message_id) == (False, "")


def test_related_inline_image_and_attached_message():
    parsed = sample("mail-gem--attachment_message_rfc822_inline_image.eml")
    image = attachment(parsed, "img.png")
    assert image.inline is True
    assert image.content_id == "emedfeb92f-a786-4718-a446-98db8afb53fb@kronos"
    assert image.content.startswith(b"\x89PNG")
    assert 'src="cid:emedfeb92f-a786-4718-a446-98db8afb53fb@kronos"' in parsed.body_html
    assert attachment(parsed, "Testmail.eml").content_type == "message/rfc822"


def test_related_parts_without_content_disposition_are_inline():
    parsed = sample("mail-gem--missing_content_disposition.eml")
    (image,) = parsed.attachments
    # The sample has no Content-ID: the name comes from Content-Location.
    assert (image.filename, image.content_type, image.inline) == ("somefile.jpg", "image/jpg", True)
    assert image.content_id == ""


@pytest.mark.parametrize(
    ("name", "subject", "body"),
    [
        ("mail-gem--japanese_iso_2022.eml", "まみむめも", "すみません。"),
        (
            "mail-gem--japanese_shift_jis.eml",
            "test",
            "あいうえお\n\nこのメールはテスト用のメールです。\n\n今後ともよろしくお願い申し上げます！",  # noqa: RUF001
        ),
        ("mail-gem--ks_c_5601-1987.eml", "test", "스티해"),
    ],
)
def test_asian_charsets_are_decoded(name, subject, body):
    parsed = sample(name)
    assert (parsed.subject, parsed.body_text) == (subject, body)
    assert parsed.errors == []


def test_unknown_charset_is_read_as_utf8_and_noted():
    parsed = sample("mail-gem--raw_email10.eml")
    assert parsed.body_text.startswith("Test test. Hi. Waving. m")
    assert "Envoyé par le service de messagerie texte de Bell Mobilité." in parsed.body_text
    assert any("X-UNKNOWN" in error for error in parsed.errors)
    assert parsed.subject == ""


def test_malformed_dates_give_none():
    parsed = sample("mail-gem--raw_email_bad_time.eml")  # year 3609
    assert parsed.date is None
    assert parsed.from_name == "Атиковa"  # noqa: RUF001 - Cyrillic with a Latin "a", as sent
    assert "scanned for viruses" in parsed.body_text
    assert sample("mail-gem--trademark_character_in_subject.eml").date is None  # zone "H0500"


def test_two_addresses_in_from_take_the_first():
    parsed = sample("mail-gem--raw_email_with_at_display_name.eml")
    assert (parsed.from_email, parsed.from_name) == ("test@lindsaar.net", "Mikel Lindsaar")
    # "Mikel@Lindsaar <raasdnil@gmail.com>": the @ in the display name is not an address.
    assert parsed.to == ["smith@gmail.com", "raasdnil@gmail.com", "tom@gmail.com"]


def test_dsn_with_several_failed_recipients():
    parsed = sample("mail-gem--multi_address_bounce1.eml")
    assert parsed.bounce is True and parsed.auto_reply is True
    assert sorted(parsed.bounce_recipients) == [
        "bbbbvhvbbvkjbhfbvbvjhb@gmail.com",
        "bscdbcjhasbcjhbdscbhbsdhcbj@gmail.com",
        "egyfefsdvsfvvhjsd@gmail.com",
        "kfhejkfbsjkjsbhds@gmail.com",
        "qfvhgsvhgsduiohncdhcvhsdfvsfygusd@gmail.com",
    ]
    assert {detail["status"] for detail in parsed.bounce_details} == {"5.1.1"}
    assert parsed.bounce_message_id == "<118707422.15521266992174819.JavaMail.root@lvmail01>"
    assert parsed.body_text.startswith("This is the mail system at host lvmail01.LL.com.")
    assert attachment(parsed, "Test of bounce email.eml").content_type == "message/rfc822"


def test_dsn_with_returned_headers_only():
    parsed = sample("mail-gem--report_530.eml")
    assert parsed.bounce is True
    assert parsed.bounce_recipients == ["edwin@zzzzzzz.com"]
    assert parsed.bounce_details == [
        {"recipient": "edwin@zzzzzzz.com", "action": "failed", "status": "5.3.0"}
    ]
    assert parsed.bounce_message_id == "<200712232303.lBNN3jDq002941@mail12.rrrr.com.au>"
    assert attachment(parsed, "returned-headers.txt").content_type == "text/rfc822-headers"


def test_delay_warning_dsn_with_a_part_without_content_type():
    parsed = sample("mail-gem--raw_email_with_mimepart_without_content_type.eml")
    assert parsed.bounce is True
    assert parsed.bounce_recipients == ["larose.julie@courrier.uqam.ca"]
    assert parsed.bounce_details[0]["action"] == "delayed"  # a warning, not a failure
    assert "THIS IS A WARNING MESSAGE ONLY" in parsed.body_text  # part without Content-Type
    assert parsed.bounce_message_id == (
        "<89d7557c0610181510r6fa5ebd8n66a7deec71ade118@mail.gmail.com>"
    )


def test_reply_headers_for_threading():
    parsed = sample("mail-gem--raw_email_reply.eml")
    assert parsed.in_reply_to == "<348F04F142D69C21-291E56D292BC@xxxx.net>"
    assert parsed.references == [
        "<473FF3B8.9020707@xxx.org>",
        "<348F04F142D69C21-291E56D292BC@xxxx.net>",
    ]
    assert parsed.subject == "Re: Test reply email"
    assert parsed.body_text == "Message body"


def test_odd_from_headers_give_a_best_effort_sender():
    parsed = sample("mail-gem--cant_parse_from.eml")
    assert (parsed.from_email, parsed.from_name) == ("news@insideapple.apple.com", "Apple")
    assert parsed.message_id == "<7oh6b1$1clhrjk@badger-vip.apple.com>"
    assert parsed.body_text.startswith("From one solid piece of aluminum comes a MacBook Pro")

    parsed = sample("mail-gem--bad_subject.eml")
    assert parsed.from_email == "carol@mysurvey.com"
    assert parsed.from_name == "MySurvey.com & Carol Adams"  # adjacent encoded words joined
    assert parsed.subject == "MySurvey.com: You have a survey waiting! 91123105"
    assert parsed.reply_to == ["carol@reply.mysurvey.com"]
    assert parsed.message_id == ""
    # The tracking pixel is held back, not loaded.
    assert "data-remote-src=" in parsed.body_html and ' src="http' not in parsed.body_html


def test_8bit_html_newsletter_is_sanitised_and_text_derived():
    parsed = sample("mail-gem--content_transfer_encoding_with_8bits.eml")
    html = parsed.body_html.lower()
    assert "<script" not in html and "<style" not in html and "a:visited" not in html
    assert not re.search(r"\son\w+=", html)  # no event handlers
    assert ' src="http' not in html and "data-remote-src" in html  # remote images held back
    assert parsed.body_text.startswith("December 04, 2001")
    assert "Holiday Gift Ideas for the Computer Professional!" in parsed.body_text
    assert "A:visited" not in parsed.body_text and "<" not in parsed.body_text.split("\n")[0]
    assert "PROVANTAGE.COM : The Original Advantage" not in parsed.body_text  # the <title>


def test_raw_utf8_headers():
    parsed = sample("mail-gem--utf8_headers.eml")
    assert (parsed.from_email, parsed.from_name) == ("jdöe@mächine.example", "Jöhn Doe")
    assert parsed.to == ["märy@exämple.net"]
    assert parsed.subject == "Säying Hello"
    assert sample("mail-gem--trademark_character_in_subject.eml").subject == (
        "GA.comô has a lead for you"
    )


def test_signed_messages_give_the_signed_text_and_keep_signatures():
    parsed = sample("django-helpdesk--pgp.eml")
    assert parsed.body_text == (
        "hi, thanks for looking into this :)\n\n"
        "https://github.com/django-helpdesk/django-helpdesk/issues/567#issuecomment-342954233"
    )
    assert attachment(parsed, "signature.asc").content_type == "application/pgp-signature"

    parsed = sample("mail-gem--raw_email_with_nested_attachment.eml")
    assert parsed.body_text == "Here is a test of an attachment via email.\n\n- Jamis"
    assert [(item.filename, item.content_type) for item in parsed.attachments] == [
        ("truncated.png", "image/png"),
        ("smime.p7s", "application/pkcs7-signature"),
    ]


def test_unquoted_boundary_with_equals_sign_is_read():
    parsed = sample("mail-gem--raw_email_with_illegal_boundary.eml")
    assert parsed.body_text == "Hello\nThis is an outlook test\n\nSo there.\n\nMe."
    assert "<strong>So there.</strong>" in parsed.body_html


def test_odd_structures_do_not_crash():
    assert sample("mail-gem--multiple_content_types.eml").body_text == "foo"
    assert sample("mail-gem--missing_body.eml").body_text == ""
    assert sample("mail-gem--missing_body.eml").to == []  # "<Undisclosed-Recipient:@...;>"
    assert sample("mail-gem--new_line_in_to_header.eml").to == [
        "leads@sg.dc.com",
        "sag@leads.gs.ry.com",
        "sn@example-hotmail.com",
        "e-s-a-g-8718@app.ar.com",
        "jp@t-exmaple.com",
        "cc@c-l-example.com",
    ]
    madness = sample("mail-gem--encoding_madness.eml")
    assert (madness.body_text, madness.reply_to) == ("Body Text", [])  # Reply-To "... <>"
    only = sample("mail-gem--attachment_only_email.eml")
    assert only.body_text == ""
    assert [(a.filename, a.content_type) for a in only.attachments] == [
        ("blah.gz", "application/x-gzip")
    ]
    big5 = sample("mail-gem--content_transfer_encoding_empty.eml")
    assert big5.body_text and "<font" not in big5.body_html


def test_forwarded_mail_with_8bit_body_and_html():
    parsed = sample("django-helpdesk--utf-nondecodable.eml")
    assert parsed.subject == "Fwd: Cyklozaměstnavatel - změna vyhodnocení"
    assert "Ahoj Johne,\npodle domluvy bych Tě poprosila" in parsed.body_text
    assert "prosazuje lepší" in parsed.body_html


def test_outlook_style_forward_is_split_at_the_original_message():
    parsed = sample("django-helpdesk--forwarded-message.eml")
    new, quoted = split_quoted(parsed.body_text)
    assert new == "This is email body"
    assert quoted.startswith("-----Original Message-----\nFrom: GitHub <noreply@github.com>")


def test_our_out_of_office_sample_is_an_auto_reply():
    parsed = parse_message((OWN_SAMPLES_DIR / "out-of-office.eml").read_bytes())
    assert parsed.auto_reply is True and parsed.bounce is False
    assert parsed.in_reply_to == "<ticket-104233-1@example.com>"
    assert "Björn Berg <bjorn@example.net>" in parsed.body_text
    assert "margin" not in parsed.body_html


# --- auto-replies and bounces ----------------------------------------------------------------

PLAIN = """
From: Casey <casey@example.com>
To: support@example.com
Subject: Out of Office: printer
Message-ID: <a1@example.com>
Date: Mon, 3 Mar 2025 08:15:01 +0000
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: auto-generated (failure)", True),
        ("Auto-Submitted: no", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: on vacation", True),
        ("Precedence: bulk", True),
        ("Precedence: list", True),
        ("X-Auto-Response-Suppress: All", True),
        ("X-Auto-Response-Suppress: DR, RN, OOF, AutoReply", True),
        ("X-Priority: 3", False),  # an ordinary message, even with an "Out of Office" subject
    ],
)
def test_auto_reply_detection(extra, expected):
    parsed = parse_message(mail(PLAIN + extra))
    assert parsed.auto_reply is expected
    assert parsed.bounce is False


def test_bounce_from_mailer_daemon_or_failed_recipients_header():
    daemon = parse_message(
        mail("From: MAILER-DAEMON@mx.example.com\nTo: support@example.com\nSubject: Failure")
    )
    assert daemon.bounce is True
    header = parse_message(mail(PLAIN + "X-Failed-Recipients: gone@example.org, other@example.org"))
    assert header.bounce is True
    assert header.bounce_recipients == ["gone@example.org", "other@example.org"]
    # A customer forwarding a bounce by hand is not a bounce.
    forwarded = parse_message(
        mail("From: casey@example.com\nTo: support@example.com\nSubject: Undeliverable: hi")
    )
    assert forwarded.bounce is False


# --- sanitising ------------------------------------------------------------------------------

HOSTILE_HTML = """
From: attacker@example.org
To: support@example.com
Subject: hi
Content-Type: text/html; charset=utf-8
"""


def test_html_mail_is_sanitised_and_remote_images_held_back():
    body = (
        "<html><head><title>Secret title</title><style>p{color:red}</style>"
        "<script>alert('head')</script></head><body>"
        '<p onclick="steal()">Hello <b>agent</b></p>'
        '<img src="x" onerror="alert(1)">'
        '<img src="https://tracker.example/pixel.gif?u=1" width="1">'
        '<a href="javascript:alert(2)">click</a> <a href="https://example.com/faq">FAQ</a>'
        "<script>alert('body')</script><iframe src='https://evil.example'></iframe>"
        "</body></html>"
    )
    parsed = parse_message(mail(HOSTILE_HTML, body))
    html = parsed.body_html.lower()
    assert "<script" not in html and "alert" not in html and "<iframe" not in html
    assert "onclick" not in html and "onerror" not in html and "javascript:" not in html
    assert 'data-remote-src="https://tracker.example/pixel.gif?u=1"' in parsed.body_html
    assert ' src="https://tracker' not in parsed.body_html
    assert "<b>agent</b>" in parsed.body_html
    assert parsed.body_text == "Hello agent\n\nclick FAQ <https://example.com/faq>"


def test_html_only_mail_gets_text_with_line_breaks_and_quotes():
    body = (
        "<div>Thanks!<br>It works &amp; I&#39;m happy.</div>"
        "<p>Second&nbsp;paragraph</p><ul><li>one</li><li>two</li></ul>"
        "<div>On Mon, Jan 1, 2024 Help Desk wrote:</div>"
        "<blockquote><p>Please restart.</p><p>Regards</p></blockquote>"
    )
    parsed = parse_message(mail(HOSTILE_HTML, body))
    assert parsed.body_text == (
        "Thanks!\nIt works & I'm happy.\n\nSecond paragraph\n\n- one\n- two\n\n"
        "On Mon, Jan 1, 2024 Help Desk wrote:\n\n> Please restart.\n\n> Regards"
    )
    assert split_quoted(parsed.body_text)[0].endswith("- two")


def test_html_to_text_keeps_pre_blocks():
    assert html_to_text("<p>a</p><pre>  x\n  y</pre>") == "a\n\n  x\n  y"


# --- limits ----------------------------------------------------------------------------------


def test_size_cap_raises_with_the_reason():
    raw = mail(PLAIN, "x" * (2 * 1024 * 1024))
    with pytest.raises(MessageTooLarge) as caught:
        parse_message(raw, max_size=1024 * 1024)
    assert isinstance(caught.value, ParseError)
    assert caught.value.reason == "message is 2.0 MB, the limit is 1.0 MB"
    assert str(caught.value) == caught.value.reason
    assert parse_message(raw, max_size=len(raw)).body_text.startswith("xxx")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n ", "empty"),
        (b"\x00\x01\x02 not an email at all", "no header"),
    ],
)
def test_unusable_input_raises_parse_error(raw, reason):
    with pytest.raises(ParseError, match=reason):
        parse_message(raw)


def test_too_many_mime_parts_is_refused_quickly():
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(5000))
    raw = mail(PLAIN + 'Content-Type: multipart/mixed; boundary="b"', parts + "--b--\r\n")
    started = time.perf_counter()
    with pytest.raises(ParseError, match="MIME parts"):
        parse_message(raw)
    assert time.perf_counter() - started < 1


def test_deep_nesting_is_refused_or_cut():
    nested = "".join(
        f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n' for i in range(3000)
    )
    raw = mail(PLAIN + 'Content-Type: multipart/mixed; boundary="b0"', nested)
    started = time.perf_counter()
    with contextlib.suppress(ParseError):
        parse_message(raw)
    assert time.perf_counter() - started < 10


def test_a_10_mb_message_parses_in_seconds():
    rng = random.Random(7)
    payload = rng.randbytes(7_400_000)
    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    body = (
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached dump.\r\n"
        '--b\r\nContent-Type: application/octet-stream; name="dump.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "\r\n--b--\r\n"
    )
    raw = mail(PLAIN + 'Content-Type: multipart/mixed; boundary="b"', body)
    assert len(raw) > 10_000_000
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 5
    assert parsed.attachments[0].content == payload
    assert parsed.body_text == "See the attached dump."


def test_a_10_mb_text_body_parses_in_seconds():
    raw = mail(PLAIN, "A line of ordinary text, as a log would have it.\r\n" * 200_000)
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 5
    assert parsed.body_text.count("\n") == 199_999


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 40_000,  # deep nesting: quadratic in html5lib
        "<a " + "x=1 " * 60_000 + ">",  # many attributes: quadratic in html5lib
        "<div " * 40_000,  # unclosed tags: quadratic in html.parser
        "<p>text</p>" * 200_000,  # just large
    ],
    ids=["nesting", "attributes", "unclosed", "large"],
)
def test_hostile_html_stays_fast_and_is_kept(html):
    started = time.perf_counter()
    parsed = parse_message(mail(HOSTILE_HTML, html))
    assert time.perf_counter() - started < 5
    assert "<script" not in parsed.body_html
    if not parsed.body_html:
        assert parsed.attachments[-1].content_type == "text/html"
        assert any("too large" in error for error in parsed.errors)


@pytest.mark.parametrize(
    "value",
    ['"' * 60_000, "(" * 60_000, "," * 60_000, "." * 60_000, "<" * 60_000, "a@b.c, " * 9000],
    ids=["quotes", "parens", "commas", "dots", "angles", "many"],
)
def test_hostile_address_headers_stay_fast(value):
    raw = mail(f"From: {value}\nTo: {value}\nCc: {value}\nSubject: x")
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 3
    assert len(parsed.to) <= 1000


def test_a_header_policy_default_rejects_is_read_anyway():
    # policy.default raises ValueError on CR/LF inside an encoded display name.
    raw = mail("From: =?utf-8?q?Eve=0D=0ABcc=3A_x?= <eve@example.com>\nTo: a@b.co")
    parsed = parse_message(raw)
    assert parsed.from_email == "eve@example.com"
    assert "\n" not in parsed.from_name and "\r" not in parsed.from_name


def test_message_ids_without_brackets_and_in_reply_to_with_comments():
    parsed = parse_message(
        mail(
            "From: a@example.com\nMessage-ID: abc@example.com\n"
            "In-Reply-To: <x1@example.com> (Casey's message of Monday)\n"
            "References: <r1@example.com>\n <r2@example.com> <r1@example.com>"
        )
    )
    assert parsed.message_id == "<abc@example.com>"
    assert parsed.in_reply_to == "<x1@example.com>"
    assert parsed.references == ["<r1@example.com>", "<r2@example.com>"]


def test_decode_bytes_falls_back_and_says_so():
    assert decode_bytes("Grüße".encode(), "utf-8") == ("Grüße", None)
    text, note = decode_bytes("Grüße".encode("latin-1"), "utf-8")
    assert text == "Grüße" and "cp1252" in note
    assert decode_bytes(b"caf\xc3\xa9", "x-unknown")[0] == "café"
    assert decode_bytes(b"abc", "base64") == ("abc", None)  # not a charset: ignored
    assert decode_bytes("스티해".encode("cp949"), "ks_c_5601-1987")[0] == "스티해"


# --- quoted replies --------------------------------------------------------------------------

GMAIL = """Thanks, that fixed it.

On Mon, Jan 1, 2024 at 10:00 AM Help Desk <
support@example.com> wrote:

> Please try restarting.
>
> -- reply above this line --
"""
OUTLOOK = """Works now.

Regards
Ann

-----Original Message-----
From: Help Desk <support@example.com>
Sent: Monday, January 1, 2024 10:00 AM
To: Ann <ann@example.com>
Subject: RE: [#123] Printer

Please try again."""
OUTLOOK_RULE = """Works now.

________________________________
From: Help Desk <support@example.com>
Sent: Monday, January 1, 2024 10:00 AM
To: Ann <ann@example.com>
Subject: RE: [#123] Printer

Please try again."""


@pytest.mark.parametrize(
    ("body", "new", "quoted_start"),
    [
        (GMAIL, "Thanks, that fixed it.", "On Mon, Jan 1, 2024 at 10:00 AM Help Desk <"),
        (OUTLOOK, "Works now.\n\nRegards\nAnn", "-----Original Message-----"),
        (OUTLOOK_RULE, "Works now.", "________________________________\nFrom: Help Desk"),
        ("Done.\n\n-- reply above this line --\nTicket #1", "Done.", "-- reply above this line"),
        ("I agree.\n\nJohn wrote:\n> first\n> second\n", "I agree.", "John wrote:"),
        ("Done.\n\n> quoted\n>> older\n", "Done.", "> quoted"),
        ("Merci\n\nLe lun. 1 janv. 2024 à 10:00, HD <s@x.fr> a écrit :\n> Bonjour", "Merci", "Le"),
        ("Danke\n\nAm 01.01.2024 um 10:00 schrieb HD <s@x.de>:\n> Hallo", "Danke", "Am 01."),
    ],
    ids=["gmail", "outlook", "outlook-rule", "separator", "quote", "bare-quote", "fr", "de"],
)
def test_split_quoted_reply_styles(body, new, quoted_start):
    got_new, got_quoted = split_quoted(body)
    assert got_new == new
    assert got_quoted.startswith(quoted_start)


@pytest.mark.parametrize(
    "body",
    [
        "> q1\na1\n> q2\na2",  # interleaved answers are all new text
        "> everything is quoted",  # nothing would be left
        "Hello\n\n---------- Forwarded message ---------\nFrom: a@b.c\nDate: Mon\nSubject: x\n",
        "Just a message.\nOn Monday we meet.",
    ],
    ids=["interleaved", "all-quoted", "forward", "plain"],
)
def test_split_quoted_keeps_bodies_it_should_not_cut(body):
    assert split_quoted(body) == (body.strip("\n"), "")


def test_split_quoted_custom_separator():
    body = "Yes\n##- Please type your reply above this line -##\nold"
    assert split_quoted(body, separator="##- Please type your reply above this line -##") == (
        "Yes",
        "##- Please type your reply above this line -##\nold",
    )
    assert split_quoted(body, separator=None)[1] == ""


@pytest.mark.parametrize(
    "body",
    [
        "> " * 100_000,
        ">\n" * 100_000,
        "> > >   \n" * 25_000,
        "On x\n" * 40_000,
        "From: a\nSent: b\n" * 20_000,
        "-" * 200_000,
        "a" * 200_000 + " wrote:\n> x",
    ],
    ids=["gt-spaces", "gt-lines", "nested", "intros", "headers", "dashes", "long-line"],
)
def test_split_quoted_is_fast_on_pathological_input(body):
    started = time.perf_counter()
    split_quoted(body)
    assert time.perf_counter() - started < 1


# --- properties ------------------------------------------------------------------------------


def _mutations(raw: bytes, data) -> bytes:
    kind = data.draw(st.sampled_from(["truncate", "flip", "duplicate", "splice"]))
    if kind == "truncate":
        return raw[: data.draw(st.integers(0, len(raw)))]
    if kind == "flip":
        mutated = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 20))):
            position = data.draw(st.integers(0, len(mutated) - 1))
            mutated[position] = data.draw(st.integers(0, 255))
        return bytes(mutated)
    if kind == "duplicate":
        lines = raw.split(b"\n")
        header_end = lines.index(b"\r") if b"\r" in lines else min(len(lines), 30)
        index = data.draw(st.integers(0, max(0, header_end - 1)))
        times = data.draw(st.integers(1, 5))
        return b"\n".join(lines[: index + 1] + [lines[index]] * times + lines[index + 1 :])
    insert = data.draw(st.binary(max_size=200))
    position = data.draw(st.integers(0, len(raw)))
    return raw[:position] + insert + raw[position:]


def _parses_or_refuses(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except ParseError as exc:
        assert "parser failed" not in exc.reason  # the safety net must not be what caught it
        return
    assert isinstance(parsed, ParsedMessage)
    json.dumps(parsed.as_json_dict(), ensure_ascii=False).encode("utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_parse_or_raise_parse_error(raw):
    _parses_or_refuses(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_samples_parse_or_raise_parse_error(data):
    if not SAMPLES:
        pytest.skip(NO_SAMPLES)
    path = data.draw(st.sampled_from(SAMPLES), label="sample")
    _parses_or_refuses(_mutations(path.read_bytes(), data))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab >:\n-_Onwrote"), max_size=400))
def test_split_quoted_loses_no_text(body):
    new, quoted = split_quoted(body)
    assert "".join((new + quoted).split()) == "".join(body.split())
