"""Contact lists: numbers read in the company's country, duplicates once, bad lines named, variables kept."""

import pytest

from campaigns.importing import ContactImportError, add_contacts, import_csv
from campaigns.models import Contact
from tests.campaigns.conftest import make_campaign


@pytest.fixture
def campaign_a(bot_a):  # Alpha Dental is in Germany: local numbers are read as German ones
    return make_campaign(bot_a, status="draft")


def phones(campaign):
    return list(campaign.contacts.order_by("pk").values_list("phone", flat=True))


def test_csv_numbers_become_e164_in_the_companys_country_with_variables(campaign_a):
    data = (b"Phone,Name,appointment,dentist\n"
            b"030 1234570,Anna Schmidt,Tuesday 10:00,Dr. Weber\n"
            b"+44 20 7946 0018,Bob,Friday 9:30,Dr. Weber\n"
            b"0049 30 1234571,  Carla ,,\n")
    result = import_csv(campaign=campaign_a, data=data)
    assert (result.created, result.duplicates, result.errors) == (3, 0, [])
    anna = campaign_a.contacts.get(phone="+49301234570")
    assert anna.name == "Anna Schmidt"
    assert anna.variables == {"appointment": "Tuesday 10:00", "dentist": "Dr. Weber"}
    assert anna.status == Contact.Status.PENDING and anna.next_attempt_at is None
    assert phones(campaign_a) == ["+49301234570", "+442079460018", "+49301234571"]
    assert campaign_a.contacts.get(phone="+49301234571").name == "Carla"


def test_bad_lines_are_named_and_the_good_ones_added(campaign_a):
    data = "phone,name\n030 1234570,Anna\nnot a number,Bob\n,Carla\n12,Dora\n030 1234572,Eve\n"
    result = import_csv(campaign=campaign_a, data=data)
    assert result.created == 2
    assert [(e.line, e.message.split(" (")[0]) for e in result.errors] == [
        (3, "phone: 'not a number' is not a phone number"),
        (4, "phone: missing"),
        (5, "phone: '12' is not a valid phone number in DE"),
    ]
    assert str(result.errors[1]) == "line 4: phone: missing"
    assert phones(campaign_a) == ["+49301234570", "+49301234572"]


def test_duplicates_in_the_file_and_in_the_campaign_count_once(campaign_a):
    import_csv(campaign=campaign_a, data="phone\n030 1234570\n")
    result = import_csv(campaign=campaign_a, data="phone\n+49 30 1234570\n030-1234571\n(030) 1234571\n")
    assert (result.created, result.duplicates) == (1, 2)
    assert [str(d) for d in result.duplicate_lines] == [  # each named with its line, none dropped silently
        "line 4: +49301234571 is on line 3 already; left out",
        "line 2: +49301234570 is in the campaign already; left out"]
    assert phones(campaign_a) == ["+49301234570", "+49301234571"]


def test_semicolons_and_a_byte_order_mark_as_excel_saves_them(campaign_a):
    data = "\ufeffTelefon;Name;phone\n1;Anna;030 1234570\n".encode()
    result = import_csv(campaign=campaign_a, data=data)
    assert result.created == 1 and result.errors == []
    assert campaign_a.contacts.get().variables == {"Telefon": "1"}


def test_whole_file_problems_name_the_file(campaign_a, settings):
    with pytest.raises(ContactImportError, match="no phone column: the header row must name one of phone, "
                                                 "phone_number, number, to, mobile, telephone \\(it has Name, City\\)"):
        import_csv(campaign=campaign_a, data="Name,City\nAnna,Berlin\n")
    with pytest.raises(ContactImportError, match="not UTF-8 text"):
        import_csv(campaign=campaign_a, data="phone,name\n030 1234570,J\xfcrgen\n".encode("latin-1"))
    settings.CAMPAIGNS_IMPORT_MAX_BYTES = 20
    with pytest.raises(ContactImportError, match="at most 20 are read") as caught:
        import_csv(campaign=campaign_a, data="phone\n030 1234570\n030 1234571\n")
    assert caught.value.field == "file"
    assert not campaign_a.contacts.exists()


def test_a_file_that_breaks_half_way_adds_nothing(campaign_a):
    # More rows than one stored batch (1000), then a field past the csv module's limit (128 KiB).
    rows = "".join(f"030 1234{i:04d}\n" for i in range(1100))
    with pytest.raises(ContactImportError, match="line 1102: not CSV \\(field larger than field limit"):
        import_csv(campaign=campaign_a, data="phone\n" + rows + "030 12349999," + "x" * 200_000 + "\n")
    assert not campaign_a.contacts.exists()


def test_rows_past_the_limit_are_reported_not_read(campaign_a, settings):
    settings.CAMPAIGNS_IMPORT_MAX_ROWS = 2
    result = import_csv(campaign=campaign_a, data="phone\n030 1234570\n030 1234571\n030 1234572\n030 1234573\n")
    assert result.created == 2
    assert [str(e) for e in result.errors] == ["line 4: more than 2 contacts in one list; the rest were not read"]


def test_json_rows_with_nested_variables_and_bad_values(campaign_a):
    rows = [{"phone": "030 1234570", "name": "Anna", "variables": {"slot": "10:00"}},
            {"phone": "030 1234571", "variables": {"slot": {"nested": 1}}},
            "+49301234572",
            {"number": 301234573, "name": "x" * 201}]
    result = add_contacts(campaign=campaign_a, rows=enumerate(rows, start=1))
    assert result.created == 1
    assert campaign_a.contacts.get().variables == {"slot": "10:00"}
    assert [str(e) for e in result.errors] == [
        "line 2: slot: a variable must be text or a number, not dict",
        "line 3: a contact must be an object with a phone",
        "line 4: name: more than 200 characters",
    ]


def test_a_sip_address_is_kept_as_it_is(campaign_a):
    result = import_csv(campaign=campaign_a, data="phone\nsip:200@pbx.example.com\n")
    assert result.created == 1 and phones(campaign_a) == ["sip:200@pbx.example.com"]


def test_a_timezone_column_is_the_contacts_own_and_a_bad_one_names_its_line(campaign_a):
    data = ("phone,name,timezone,slot\n030 1234570,Anna,Europe/Berlin,10:00\n+1 212 555 0123,Bob,America/New_York,9\n"
            "030 1234571,Carla,Mars/Olympus,11\n030 1234572,Dora,,12\n")
    result = import_csv(campaign=campaign_a, data=data)
    assert result.created == 3
    assert [str(e) for e in result.errors] == [
        ("line 4: timezone: 'Mars/Olympus' is not a known time zone; use a name such as Europe/Berlin or "
         "America/New_York")]
    assert list(campaign_a.contacts.order_by("pk").values_list("phone", "timezone", "variables")) == [
        ("+49301234570", "Europe/Berlin", {"slot": "10:00"}), ("+12125550123", "America/New_York", {"slot": "9"}),
        ("+49301234572", "", {"slot": "12"})]
    result = add_contacts(campaign=campaign_a, rows=enumerate([{"phone": "030 1234573", "timezone": "Asia/Tokyo"},
                                                               {"phone": "030 1234574", "timezone": "CET+1"}], 1))
    assert result.created == 1 and [e.line for e in result.errors] == [2]
    assert campaign_a.contacts.get(phone="+49301234573").timezone == "Asia/Tokyo"
