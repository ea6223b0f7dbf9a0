"""Personal data (PII) in feedback texts: find it, count what is already redacted, redact it.

Everything runs offline on rules: compiled regular expressions for identifiers that are
character patterns (e-mail addresses, phone numbers, NHS numbers, postcodes, dates of birth,
redaction markers) and a spaCy :class:`~spacy.matcher.Matcher` over the tokens of spaCy's blank
English tokenizer for personal names, which need token context (a title, a role word, a
sign-off). No model is downloaded or loaded.

Why two engines: spaCy's English tokenizer cuts the same kind of identifier differently
("0161-496-0000" becomes five tokens, "+44(0)20" one, "DOB:12.03.1985" one), so token patterns
for numbers would need a variant per layout, while one regular expression over the raw text
covers them all and is faster. Names are the opposite: "Dr Smith", "my therapist Sarah" and
"Sarah my CPN" are sequences of words, which is what the Matcher is for.

Speed is the main constraint (``classifier tag --pii`` must stay within 20% of tagging, which
costs ~100 microseconds a text), and most feedback holds nothing personal. So every text first
meets a pre-check made of substring tests ('@', a digit, '*', '[', "xxx", ...) and one string
comparison (a capital letter after the first character); only texts that pass it are searched
with regular expressions, and only short windows around a name cue next to a capitalised word
("thank you Jo", "Dr Smith", "Sarah my CPN") reach spaCy, all windows of a batch in one Doc.
On real NHS feedback about 2% of texts send a window to spaCy. ``benchmarks/pii_eval.py``
measures accuracy and speed.

Kinds found (see ``KINDS``):

- ``email``: e-mail addresses.
- ``phone``: UK numbers (07700 900123, +44 7700 900123, 020 7946 0018, (01632) 960 001,
  0161-496-0000) and international ones written with + or 00 (+1 202 555 0143).
- ``nhs_number``: 10 digits, plain, spaced 3-3-4 or dashed 3-3-4, with a valid modulus-11 check
  digit (:func:`nhs_check_digit`). Ten digits with a wrong check digit are not an NHS number.
- ``postcode``: UK postcodes in either case, with or without the space ("SW1A 1AA", "m1 1ae").
- ``date_of_birth``: a full date (day, month and year) introduced by a birth cue ("DOB",
  "d.o.b", "date of birth", "born (on)", "birthday is"), or any full date whose year is before
  2000 (feedback dates appointments in recent years; a 1950s date is someone's birth).
  A year alone ("born in 1985") or a birthday without a year is not flagged.
- ``name``: a personal name with a strong cue: a title ("Dr Smith", "Dr. A. Patel",
  "Nurse Kelly"), a role or relation word ("my therapist Sarah", "my counsellor, John",
  "Sarah my CPN", "a lady called Amy", "my son Jack"), thanks ("Thank you Jo"), a sign-off at the
  end ("Thanks, Sarah", "- John", "Kind regards, J. Smith") or "my name is ...". Names listed
  with a cued name ("Dr Jolly and Zoe") and later mentions of a found name are flagged too.
  A capitalised word without a cue is not ("Natasha was lovely", "Thank you Talking Therapies").

Already-redacted markers ("[Name Redacted]", "[REDACTED]", "XXXX", "***", "L***", a lone "*" in
place of a name, "<name>") are counted (:meth:`PiiFinder.count_redacted`), never reported as
found. Markers separated only by spaces count once ("Mr XXXX XXXX" is one redacted name); kisses
at the very end of a text ("Thank you all xxx") are not markers.

Example
-------
>>> from classifier.pii import PiiFinder, redact
>>> finder = PiiFinder()
>>> text = "Dr Smith rang me on 07700 900123. Dr XXX was lovely too."
>>> spans = finder.find(text)
>>> [(s.kind, text[s.start:s.end]) for s in spans]
[('name', 'Smith'), ('phone', '07700 900123')]
>>> redact(text, spans)
'Dr [NAME] rang me on [PHONE]. Dr XXX was lovely too.'
>>> finder.count_redacted(text)
1
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("email", "phone", "nhs_number", "postcode", "date_of_birth", "name")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}
PII_COLUMN = "pii"
REDACTED_COLUMN = "pii_redacted"
REDACTED_TEXT_COLUMN = "redacted_text"

# When two candidate spans of equal length overlap, the more specific kind wins (an NHS number
# is also a run of digits; an e-mail address can contain something that looks like a postcode).
_SPECIFICITY = {
    kind: rank
    for rank, kind in enumerate(
        ("email", "nhs_number", "date_of_birth", "phone", "postcode", "name")
    )
}


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data: its kind and character offsets ``text[start:end]``."""

    kind: str
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# NHS numbers
# --------------------------------------------------------------------------------------------


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit of an NHS number, or None when no digit is valid.

    Weights 10, 9, ..., 2 multiply the first nine digits; the check digit is
    ``11 - (sum mod 11)``, where 11 becomes 0 and 10 means the nine digits cannot start an
    NHS number.

    Parameters
    ----------
    first_nine : str
        The first nine digits.

    Returns
    -------
    int or None

    Examples
    --------
    >>> nhs_check_digit("943476591")
    9
    """
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("nhs_check_digit needs exactly nine digits")
    total = sum(
        int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    """Whether ``value`` (digits, optionally spaced or dashed) is a valid NHS number.

    Examples
    --------
    >>> is_valid_nhs_number("943 476 5919"), is_valid_nhs_number("943 476 5918")
    (True, False)
    """
    digits = re.sub(r"[\s-]", "", value)
    if len(digits) != 10 or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


# --------------------------------------------------------------------------------------------
# Character-level patterns
# --------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]*\w@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# A run of digit groups joined by at most three separator characters: a candidate phone or NHS
# number. It is then cut into its digit groups and validated group by group (see
# _numbers_in_run), so "call 07700 900123 2 times" still yields the phone number.
# (Starts with a character class, not a look-behind, so that Python's regex engine can skip
# through the text in C; the look-behind is checked in _digit_spans.)
_NUMBER_RUN = re.compile(r"[+(]*\d(?:[ .()\-]{0,3}\d)*\)?")
_DIGIT_GROUP = re.compile(r"\d+")
# One scan of a text with digits finds where each digit-based kind can start: a numeric
# date ("12/03/1985"), a postcode's inward code (the "1AA" of "SW1A 1AA"; C I K M O V never
# occur there) or a run of three digits (which every UK phone and NHS number has).
_DIGIT_SCAN = re.compile(
    r"\d(?:(?P<date>\d?[/.\-]\d\d?[/.\-](?:\d{4}|\d{2})(?!\d))"
    r"|(?P<inward>[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]{2}(?![\w-]))"
    r"|(?P<run>\d\d))"
)
# A postcode's outward code (area letters, district digits, an optional letter or digit and
# an optional space) just before an inward code found by _DIGIT_SCAN.
_OUTWARD = re.compile(r"(?<![\w-])[A-PR-UWYZ][A-HK-Y]?[0-9][0-9A-Z]?[ \t]?\Z", re.IGNORECASE)
_ORDINAL_SUFFIXES = {"st", "nd", "rd", "th"}  # "M6 2nd" is a motorway and an ordinal

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = (
    r"(?:(?P<d1>\d{1,2})[/.\-](?P<m1>\d{1,2})[/.\-](?P<y1>\d{4}|\d{2})(?!\d)"
    r"|(?P<y2>(?:19|20)\d{2})-(?P<m2>\d{1,2})-(?P<d2>\d{1,2})(?!\d)"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+(?P<y3>\d{{4}})(?!\d)"
    rf"|{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})(?!\d))"
)
_DOB_CUE = (
    r"(?:\bd\.?\s?o\.?\s?b\b\.?|\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bbirthday\b|\bborn\b)"
)
# The cue may be followed by a few linking words ("is", "on the") and punctuation.
_DOB = re.compile(
    rf"{_DOB_CUE}[\s:;,.=\-–]*(?:(?:is|was|on|the|of)\s+){{0,3}}(?P<date>{_DATE})", re.IGNORECASE
)
# Dates without a cue count when their year is before 2000: numeric ones ("3.4.90",
# "5.9.1930", found by _DIGIT_SCAN and read with _NUMERIC_DATE), and, in texts with "19", "11
# Feb 1940" and "1959-08-22".
_NUMERIC_DATE = re.compile(r"(?P<d1>\d{1,2})[/.\-](?P<m1>\d{1,2})[/.\-](?P<y1>\d{4}|\d{2})(?!\d)")
_OLD_WORD_DATE = re.compile(
    rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+(?P<y3>19\d\d)"
    r"|(?P<y2>19\d\d)-(?P<m2>\d{1,2})-(?P<d2>\d{1,2}))(?!\d)",
    re.IGNORECASE,
)
_BIRTH_HINTS = ("dob", "d.o.b", "birth", "born")

# Redaction markers. Bracketed ones name the redaction ("[Name Redacted]", "(ADDRESS
# REDACTED)", "[Time and date redacted]") or are a placeholder ("<name>", "[surname]").
# One pattern per kind of marker, each run only when a substring test says it can match
# (regular expressions cost far more than "xxx" in text).
_BRACKET_MARKER = re.compile(
    r"[\[(<{][^\[\]()<>{}\n]{0,40}?\b(?:redacted|removed|withheld|anonymi[sz]ed)\b"
    r"[^\[\]()<>{}\n]{0,40}?[\])>}]"
    r"|[\[<]\s*(?:(?:first|last|sur|nick|full|staff|patient|person'?s?|client)\s*)?names?\s*[\]>]",
    re.IGNORECASE,
)
_BARE_REDACTED = re.compile(r"(?:\b[A-Z]+ )?\bREDACTED\b")  # "last DATE REDACTED as ..."
_X_RUN = re.compile(r"[xX]{3,}")
_STAR_RUN = re.compile(r"\*+(?:[A-Za-z]\*+)?")  # "***", "*R***"
_ONLY_TRAILING = re.compile(r"[\W_]*\Z")  # punctuation, emoji and spaces to the end
_BULLET_AFTER = re.compile(r"[ \t]+[A-Z]")  # "* Didn't use transport" is a bullet point
# The word before a marker at the very end: after these it stands for a word ("be a xxxx",
# "learn from * and *"), otherwise it is kisses or a footnote ("Thank you all xxx", "Nothing *").
_WORD_BEFORE = re.compile(r"(\w+|[,&])\W*\Z")
_STANDS_FOR_A_WORD = frozenset(
    "a an the my your his her their our and & , from to with by for nurse dr mr mrs ms miss".split()
)

# --------------------------------------------------------------------------------------------
# Name cues (shared by the pre-check and the spaCy Matcher patterns)
# --------------------------------------------------------------------------------------------

# Titles are matched case-sensitively: "Miss Jenna" is a title, "I miss Jenna" is not.
_TITLES = frozenset(
    "Dr Dr. DR Mr Mr. MR Mrs Mrs. MRS Ms Ms. Miss Mx Prof Prof. Professor Doctor Nurse Sister "
    "Matron Nurses".split()
)
_WORD_TITLES = frozenset("Professor Doctor Nurse Nurses Sister Matron Miss".split())
_ROLES = frozenset(
    """
    therapist therapists psychotherapist counsellor counselor psychologist psychiatrist cpn pwp
    physio physiotherapist ot nurse nurses doctor consultant worker keyworker coordinator
    co-ordinator visitor midwife matron manager leader facilitator practitioner receptionist
    clinician dentist mentor advisor adviser assistant hca paramedic podiatrist psych psyc shrink
    cco surgeon pharmacist dietitian chaplain tutor volunteer
    son daughter husband wife partner mum mam mom mother dad father brother sister nan nana
    grandma grandad granddad grandson granddaughter boyfriend girlfriend fiance fiancee carer
    friend
    """.split()
)
_PERSON_NOUNS = _ROLES | frozenset(
    """
    lady man woman gentleman guy girl boy chap bloke person someone somebody fella lad gent
    """.split()
)
_THANKS = frozenset("thanks thankyou thanx thx cheers".split())
_SIGN_OFFS = frozenset(
    "regards wishes best cheers thanks love sincerely faithfully respectfully warmly".split()
)
_DETERMINERS = frozenset("my our the your his her their a an".split())
# Words after which a capitalised word is part of a place or service name, not a person's.
_PLACE_WORDS = frozenset(
    """
    ward wards centre center house unit hospital team clinic surgery road street lane court
    avenue group service services trust practice lodge hub school college university hall
    building health nhs foundation way park suite department dept children childrens
    """.split()
)
# Capitalised words that are not names although they follow a cue ("Thank you Talking
# Therapies", "my therapist I think", "Thanks Everyone"). Compared in lower case.
_NOT_NAMES = frozenset(
    """
    i i'm im me we you he she they it its it's this that these those there here what who when
    where why how which the a an and or but so if as at by for from in into of on onto to with
    without my our your his her their all any both each every everyone everybody everything
    anyone anybody anything someone somebody something nothing noone nobody none no not yes ok
    okay is was are were be been being has have had do does did can could will would shall
    should may might must also just very really so too much many more most again still even
    always never sometimes often overall honestly thanks thank thankyou please hi hello dear
    sorry well good great brilliant amazing lovely fantastic excellent wonderful fab kind
    helpful best nice caring super perfect superb outstanding fine bad poor awful terrible
    happy sad new old first last next other same such only own
    team staff service services nhs trust ward wards unit centre center clinic hospital house
    home group groups crisis community district mental health healthcare physical talking
    therapies therapy therapist counselling counsellor nurse nurses doctor doctors dr drs
    mr mrs ms miss prof sister matron gp cpn ot pwp cbt dbt emdr camhs iapt
    mind steps sure start lets let's wellbeing well-being recovery heart failure lung memory
    dementia diabetes pain sleep mindfulness stress anxiety depression adult adults older
    people young early intervention eating disorder disorders children childrens family
    families parent parents baby massage support
    monday tuesday wednesday thursday friday saturday sunday weekend today tomorrow yesterday
    january february march april june july august september october november december
    christmas easter covid covid-19 coronavirus lockdown god jesus lord
    xx xxx xxxx xxxxx
    luckily unfortunately fortunately thankfully hopefully obviously initially eventually
    finally basically personally recently currently previously originally generally usually
    get got see saw seen ask asked tell told make made keep give gave send sent call ring rang
    contact need want met meet like liked find found feel felt think thought know knew wish
    said say went came come go take took help helped try stop bring brought spoke speak
    yours experience event events meeting meetings forum review assessment training course
    courses programme program session sessions information involvement network form forms
    within across about above below between through throughout towards upon against along
    among amongst around behind beside beyond despite except inside outside over under via
    ladies guys girls folks gang social clinical senior lead specialist occupational trainee
    student key care peer speech named assistant poem
    loads lots alot firstly secondly lastly mostly mainly especially particularly only
    sadly clearly definitely certainly actually quickly later then now after before since
    until because although though while whilst however yet once during
    """.split()
)

# Cue words are never names themselves ("Team Leader Katy": the name is "Katy").
_NEVER_NAMES = (
    _NOT_NAMES
    | _ROLES
    | _PERSON_NOUNS
    | _THANKS
    | _SIGN_OFFS
    | {title.lower() for title in _TITLES}
    | {"thank", "called", "named", "name", "professor", "mx"}
)
# A name starts with two letters ("O'Brien" counts, "A." is an initial).
_NAME_START = r"^[^\W\d_](?:[^\W\d_]|['’][^\W\d_])"
_NAME_START_RE = re.compile(_NAME_START)
_INITIAL_RE = re.compile(r"[A-Z]\.?")


# Pre-check for names: a cue word (as a whole word, in the lower-cased text) ...
_CUE_WORDS = {t.lower().rstrip(".") for t in _TITLES} | _ROLES | _THANKS | {"thank", "name"}
# Person nouns only count before "called"/"named" ("a lady called Amy") and sign-offs only at
# the end ("Best wishes, Margaret"): "the man" and "the best" are too common to check anywhere.
_WEAK_CUES = {word: "called" for word in _PERSON_NOUNS - _CUE_WORDS} | {
    word: "end" for word in _SIGN_OFFS - _CUE_WORDS
}


def _word_forms(words: Iterable[str]) -> dict[str, str]:
    """Each word as str.split() may leave it (with trailing punctuation) -> the word."""
    suffixes = ("", ",", ".", "!", "?", ":", ";", ")", "'s", "’s", "..", "!!", "-", "'", "’")
    return {word + suffix: word for word in words for suffix in suffixes}


# A set intersection with the text's words rules out three quarters of texts before any
# regular expression runs, and tells which cue words to look for.
_CUE_FORMS = _word_forms(_CUE_WORDS | set(_WEAK_CUES))
_CUE_FORMS.update({f"thank-you{s}": "thank" for s in ("", ",", ".", "!")})
_CUE_FORM_SET = frozenset(_CUE_FORMS)


# ... with a capitalised word or initial shortly after it ("Dr Smith", "therapist, called Amy",
# "thank you so much Jenny") or, for a role word, shortly before it ("Sarah my CPN",
# "Dave is a great CCO"). Only texts passing this second check are tokenised by spaCy.
_CAPITAL_AFTER = re.compile(
    r"(?P<dot>\.)?[\s,:(\-–]*(?:(?i:you|u|to|so|very|much|again|a|lot|called|named|is|was|from)"
    r"[\s,!\-–]+){0,4}(?:[A-Z]\.?\s*){0,2}(?P<word>[A-Z][a-zà-ÿ'’]+)"
)
_CAPITAL_BEFORE = re.compile(
    r"(?P<word>[A-Z][a-zà-ÿ'’-]+)[\s,(]+(?:(?:is|was|as)\s+)?"
    r"(?:my|our|the|a|an|his|her|your|their)\s+(?:[\w-]+\s+){0,3}\Z"
)
_TITLE_CUES = frozenset(title.lower().rstrip(".") for title in _TITLES)


# A signature after a dash at the very end: "... thank you.\n- John".
_DASH_SIGN_OFF = re.compile(r"[-–—~]\s*(?:[A-Z]\.?\s*){0,2}[A-Z][a-zà-ÿ'’]+[\W_]*\Z")


def _name_windows(text: str, lower: str) -> list[tuple[int, int]]:
    """Stretches of ``text`` where a name cue sits next to a capitalised word.

    Only these windows (a cue with ~40 characters either side, widened to spaces) are
    tokenised by spaCy: tokenising and matching a whole 2,000-character story because it says
    "thank you" once would cost more than tagging it.
    """
    hits = []
    tail = text[-40:]  # a dash signature ("... thanks.\n- John") ends the text
    if ("-" in tail or "–" in tail or "—" in tail or "~" in tail) and _DASH_SIGN_OFF.search(
        text, max(0, len(text) - 40)
    ):
        hits.append((max(0, len(text) - 40), len(text)))
    words = lower.split()
    if "/" in lower or "(" in lower:  # "my keyworker/CPN Peter", "Sarah (my CPN)"
        words = lower.replace("/", " ").replace("(", " ").split()
    forms = _CUE_FORM_SET.intersection(words)
    for word in {_CUE_FORMS[form] for form in forms}:
        weak = _WEAK_CUES.get(word)
        if weak == "called" and "called" not in lower and "named" not in lower:
            continue
        # str.find plus a word-boundary test: cheaper than a regex for one or two cue words.
        start = lower.rfind(word, max(0, len(lower) - 60)) if weak == "end" else lower.find(word)
        while start >= 0:
            end = start + len(word)
            if (start == 0 or not lower[start - 1].isalnum()) and (
                end == len(lower) or not lower[end].isalnum()
            ):
                if _cue_before_name(text, word, start, end):
                    hits.append((start, end))
            start = lower.find(word, end)
    return _merge_windows(text, sorted(hits))


def _cue_before_name(text: str, cue: str, start: int, end: int) -> bool:
    """Whether the cue at ``text[start:end]`` has a capitalised word that may be a name just
    after it ("Dr. Smith", "thank you so much Jenny") or, for a role, just before it ("Sarah my
    CPN"); "my son. They ..." and "thank you Talking Therapies" do not count."""
    after = _CAPITAL_AFTER.match(text, end)
    if after and (not after.group("dot") or cue in _TITLE_CUES):
        if after.group("word").lower() not in _NEVER_NAMES:
            return True
    if cue in _ROLES:
        before = _CAPITAL_BEFORE.search(text, max(0, start - 60), start)
        return before is not None and before.group("word").lower() not in _NEVER_NAMES
    return False


# Window around a cue: "Sarah Jones (my care coordinator)" puts the name ~35 characters
# before the role word; "Dr Schofield, Dianne and Mark" runs ~30 characters past the cue.
_BEFORE_CUE, _AFTER_CUE = 40, 40


def _merge_windows(text: str, hits: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Windows around cue hits, widened to spaces and merged when they overlap."""
    windows: list[tuple[int, int]] = []
    for start, end in hits:
        start = max(0, text.rfind(" ", 0, max(0, start - _BEFORE_CUE)) + 1)
        stop = text.find(" ", min(len(text), end + _AFTER_CUE))
        end = len(text) if stop < 0 else stop
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    return windows


# --------------------------------------------------------------------------------------------
# The finder
# --------------------------------------------------------------------------------------------


class PiiFinder:
    """Find personal data and count already-redacted markers in feedback texts.

    Parameters
    ----------
    kinds : sequence of str, optional
        The kinds to look for (default: all of ``KINDS``).
    batch_size : int, default 256
        Name windows tokenised together, as one spaCy Doc (see :meth:`analyse_many`).

    Notes
    -----
    ``__init__`` only stores the settings. The spaCy tokenizer and Matcher are built the first
    time a text needs them, once per process (~0.1 s), and shared by all finders; nothing of
    spaCy's is stored on the finder, so it pickles as its settings (for worker processes).

    Examples
    --------
    >>> finder = PiiFinder()
    >>> [s.kind for s in finder.find("My CPN Darren is brilliant, email d@example.com")]
    ['name', 'email']
    >>> finder.find_many(["Nothing to add", None])
    [[], []]
    """

    def __init__(self, kinds: Sequence[str] | None = None, batch_size: int = 256):
        self.kinds = tuple(KINDS if kinds is None else kinds)
        self.batch_size = batch_size
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown PII kinds {unknown}; choose from {list(KINDS)}")

    # -- public API ---------------------------------------------------------------------------

    def find(self, text: object) -> list[PiiSpan]:
        """Personal data in one text: sorted, non-overlapping spans ([] for non-text values)."""
        return self.find_many([text])[0]

    def find_many(self, texts: Iterable[object]) -> list[list[PiiSpan]]:
        """:meth:`find` for many texts; the few windows that need spaCy go as one batch.

        Values that are not strings (None, NaN, numbers) give ``[]``.
        """
        return [spans for spans, _ in self.analyse_many(texts)]

    def count_redacted(self, text: object) -> int:
        """Number of already-redacted markers in ``text`` (0 for non-text values).

        Examples
        --------
        >>> PiiFinder().count_redacted("Thanks [Name Redacted] and Dr XXX. Love from us xxx")
        2
        """
        if not isinstance(text, str):
            return 0
        return _count_markers(text) if _might_hold_markers(text, text.lower()) else 0

    def analyse_many(self, texts: Iterable[object]) -> list[tuple[list[PiiSpan], int]]:
        """Found spans and redacted-marker count for each text, in order.

        What :func:`pii_columns` uses: one pass gives both. Identical texts are analysed once.
        """
        texts = list(texts)
        results: list[tuple[list[PiiSpan], int]] = [([], 0) for _ in texts]
        seen: dict[str, int] = {}  # exports repeat themselves ("Nothing", "All good")
        windows: list[tuple[int, int, int]] = []  # (text index, start, end) for spaCy
        partial: dict[int, tuple[list[PiiSpan], int]] = {}
        repeats: list[tuple[int, int]] = []
        want_names = "name" in self.kinds
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                continue
            # The pre-check: substring tests and one string comparison, which most texts
            # fail, before anything that costs more (see _analyse_characters).
            lower = text.lower()
            digits = _has_digit(text)
            may_name = want_names and _may_hold_name(text, lower)
            if not (digits or may_name or "@" in text or _might_hold_markers(text, lower)):
                continue
            if text in seen:
                repeats.append((i, seen[text]))
                continue
            seen[text] = i
            spans, redacted, text_windows = self._analyse_characters(text, lower, digits, may_name)
            if spans or redacted or text_windows:
                partial[i] = (spans, redacted)
                windows += [(i, start, end) for start, end in text_windows]
        names: dict[int, list[PiiSpan]] = {}
        for batch_start in range(0, len(windows), self.batch_size):
            batch = windows[batch_start : batch_start + self.batch_size]
            for i, start, end in _names_in_windows(texts, batch):
                names.setdefault(i, []).append(PiiSpan("name", start, end))
        for i, (spans, redacted) in partial.items():
            found = _add_repeats(texts[i], names.get(i, []))
            results[i] = (_resolve(spans + found), redacted)
        for i, first in repeats:
            results[i] = results[first]
        return results

    # -- internals ----------------------------------------------------------------------------

    def _analyse_characters(
        self, text: str, lower: str, digits: bool, names: bool
    ) -> tuple[list[PiiSpan], int, list[tuple[int, int]]]:
        """Regex-found spans, marker count, and the windows the name Matcher must read.

        ``digits`` and ``names`` are the pre-check's answers (see analyse_many).
        """
        spans: list[PiiSpan] = []
        redacted = 0
        wants = self.kinds
        # Plain substring tests first: each costs a fraction of a regular-expression scan.
        if "@" in text and "email" in wants:
            spans += [PiiSpan("email", *m.span()) for m in _EMAIL.finditer(text)]
        if digits:
            spans += _digit_spans(text, lower, wants)
        if _might_hold_markers(text, lower):
            redacted = _count_markers(text)
        # A cued name is a capitalised word; half of all feedback has no capital after its first
        # character, and comparing two strings costs far less than looking for cue words.
        windows = _name_windows(text, lower) if names else []
        return spans, redacted, windows

    def __repr__(self) -> str:
        return f"PiiFinder(kinds={self.kinds!r}, batch_size={self.batch_size})"


def _has_digit(text: str) -> bool:
    for digit in "0123456789":  # ten substring tests beat one regex scan
        if digit in text:
            return True
    return False


# A text opening with a name before "my"/"the"/"is" ("Sarah my CPN was ...").
_OPENING_NAME = re.compile(r"([A-Z][a-zà-ÿ'’]+),?\s\(?(?:my|our|the|is|was|as|an?)\s")


def _may_hold_name(text: str, lower: str) -> bool:
    """Whether ``text`` has a capitalised word where a cued name could be.

    Half of all feedback has no capital letter after its first character; comparing two
    strings costs a fraction of looking for cue words. A text whose only capital opens it can
    still start with a name ("Mark the physio was ...").
    """
    if text[1:] != lower[1:]:
        return True
    opening = _OPENING_NAME.match(text)
    return opening is not None and opening.group(1).lower() not in _NEVER_NAMES


_WINDOW_SEPARATOR = "\x00"  # a token of its own that no pattern matches


def _names_in_windows(
    texts: Sequence[str], windows: Sequence[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """(text index, start, end) of the cued names in ``windows`` ((text index, start, end)).

    The windows are joined into one string, tokenised and matched once: spaCy's per-call
    costs would otherwise exceed the work on a window of twenty tokens.
    """
    tokenizer, matcher, strings = _pipeline()
    pieces, offsets = [], []
    position = 0
    for i, start, end in windows:
        offsets.append(position)
        piece = texts[i][start:end].replace(_WINDOW_SEPARATOR, " ")  # same length
        pieces.append(piece)
        position += len(piece) + 3  # " \x00 " after each window
    joined = "".join(piece + f" {_WINDOW_SEPARATOR} " for piece in pieces)
    doc = tokenizer(joined)
    # Token index of each separator, from the tokens' character offsets (iterating over the
    # tokens in Python would cost more than tokenising).
    token_starts = doc.to_array("IDX")
    separators = np.searchsorted(
        token_starts, [offset - 2 for offset in offsets[1:]] + [len(joined) - 2]
    ).tolist()
    text_ends = frozenset(
        token
        for token, (i, _, end) in zip(separators, windows, strict=True)
        if end == len(texts[i])
    )
    found = []
    for start, end in _name_spans(doc, matcher, strings, text_ends):
        w = bisect.bisect_right(offsets, start) - 1
        i, window_start, _ = windows[w]
        found.append((i, window_start + start - offsets[w], window_start + end - offsets[w]))
    return found


@functools.lru_cache(maxsize=1)
def _pipeline():
    """spaCy tokenizer, Matcher and string store, built once per process (~0.1 s).

    The tokenizer is spacy.blank("en")'s (English prefixes, suffixes, infixes and URL rules)
    with only the special cases the patterns need (titles and initials that keep their dot):
    spacy.blank("en") itself loads 1,347 special cases, which takes 0.3 s, as long as finding
    names in 20,000 feedback texts. The vocabulary is the finder's own: the cue classes are
    written into it (see _mark_cue_words), so it is never shared with the tagging pipeline.
    """
    # Imported here: importing spaCy costs ~1 s and most texts never need it.
    from spacy import attrs
    from spacy.lang import lex_attrs
    from spacy.lang.en import English
    from spacy.matcher import Matcher
    from spacy.tokenizer import Tokenizer
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
    from spacy.vocab import Vocab

    defaults = English.Defaults
    # Only the lexical attributes the patterns read: every new word makes a lexeme, and
    # English's full set (like_num, shape, like_url, ...) triples what that costs.
    vocab = Vocab(
        lex_attr_getters={
            attrs.IS_ALPHA: lex_attrs.is_alpha,
            attrs.IS_TITLE: lex_attrs.is_title,
            attrs.IS_UPPER: lex_attrs.is_upper,
            attrs.IS_PUNCT: lex_attrs.is_punct,
            attrs.IS_SPACE: lex_attrs.is_space,
            attrs.LOWER: lex_attrs.lower,
            attrs.NORM: lex_attrs.lower,
        }
    )
    dotted = [f"{letter}." for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    dotted += [f"{title}." for title in ("Dr", "DR", "Mr", "MR", "Mrs", "MRS", "Ms", "Prof")]
    tokenizer = Tokenizer(
        vocab,
        rules={word: [{attrs.ORTH: word}] for word in dotted},
        prefix_search=compile_prefix_regex(defaults.prefixes).search,
        suffix_search=compile_suffix_regex(defaults.suffixes).search,
        infix_finditer=compile_infix_regex(defaults.infixes).finditer,
        token_match=defaults.token_match,
        url_match=defaults.url_match,
    )
    _mark_cue_words(vocab)
    matcher = Matcher(vocab)
    for key, patterns in _name_patterns().items():
        matcher.add(key, patterns)  # overlapping matches are resolved in _name_spans
    return tokenizer, matcher, vocab.strings


def _might_hold_markers(text: str, lower: str) -> bool:
    return (
        "*" in text
        or "[" in text
        or "<" in text
        or "xxx" in lower
        or "redact" in lower
        or "removed)" in lower  # "(name removed)"
    )


def _marker_candidates(text: str) -> list[tuple[int, int]]:
    """(start, end) of the redaction markers in ``text``, before the kisses/bullet rules."""
    found = []
    if "[" in text or "<" in text or "edact" in text or "EDACT" in text or "emoved)" in text:
        found += [m.span() for m in _BRACKET_MARKER.finditer(text)]
    if "REDACTED" in text:
        found += [m.span() for m in _BARE_REDACTED.finditer(text)]
    if "xxx" in text or "XXX" in text or "Xxx" in text:
        for m in _X_RUN.finditer(text):
            start, end = m.span()
            if (start == 0 or not text[start - 1].isalpha()) and (
                end == len(text) or not text[end].isalpha()
            ):
                found.append((start, end))
    if "*" in text:
        for m in _STAR_RUN.finditer(text):
            start, end = m.span()
            if start > 0 and text[start - 1].isalpha():  # "L***", "B*": an initial, starred
                if start == 1 or not (text[start - 2].isalnum() or text[start - 2] in "_*"):
                    start -= 1
            before = text[start - 1] if start > 0 else " "
            after = text[end] if end < len(text) else " "
            if not (before.isalnum() or before in "_*" or after.isalnum() or after in "_*"):
                found.append((start, end))  # not "5*****" (a rating) nor "**Staff" (bold)
    found.sort()
    # A marker inside another ("REDACTED" inside "(ADDRESS REDACTED)") is the same marker.
    kept: list[tuple[int, int]] = []
    for start, end in found:
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept


def _count_markers(text: str) -> int:
    """Already-redacted markers; markers separated by spaces only count once."""
    count = 0
    previous_end = -1
    for start, end in _marker_candidates(text):
        marker = text[start:end]
        at_end = _ONLY_TRAILING.match(text, end) is not None
        word_before = _WORD_BEFORE.search(text, 0, start)
        stands_for_a_word = word_before is not None and word_before.group(1).lower() in (
            _STANDS_FOR_A_WORD
        )
        if marker[0] in "xX" and not marker.isupper() and at_end and not stands_for_a_word:
            continue  # kisses at the end of a message ("Thank you all xxx"), not a redaction
        if marker == "*":
            line_start = start == 0 or text[start - 1] == "\n"
            if (line_start and _BULLET_AFTER.match(text, end)) or (
                at_end and not stands_for_a_word
            ):
                continue  # a bullet point ("* Didn't use") or a footnote mark ("Nothing *")
        if previous_end >= 0 and not text[previous_end:start].strip():
            previous_end = end  # "Mr XXXX XXXX": one redacted name
            continue
        count += 1
        previous_end = end
    return count


def _digit_spans(text: str, lower: str, wants: Sequence[str]) -> list[PiiSpan]:
    """Phone and NHS numbers, postcodes and dates of birth in a text that holds a digit.

    One scan (_DIGIT_SCAN) tells which searches can succeed: most feedback with a digit says
    "2 weeks" or "10am", and every regex scan costs about as much as the scan itself.
    """
    spans: list[PiiSpan] = []
    long_run = False
    dates = []
    for match in _DIGIT_SCAN.finditer(text):
        found = match.lastgroup
        if found == "run":
            long_run = True
        elif found == "inward":
            start, end = match.span()
            letters = match.group()[1:]
            if letters.islower() and letters in _ORDINAL_SUFFIXES:
                continue  # "M6 2nd junction"
            outward = _OUTWARD.search(text, max(0, start - 5), start)
            if outward is not None and "postcode" in wants:
                spans.append(PiiSpan("postcode", outward.start(), end))
        else:
            date = _NUMERIC_DATE.match(text, match.start())
            if date is not None:
                dates.append(date)
    # Every UK phone or NHS number has a group of three digits or more; "+33 1 23 45 67 89"
    # has its "+".
    if (long_run or "+" in text) and ("phone" in wants or "nhs_number" in wants):
        for run in _NUMBER_RUN.finditer(text):
            start = run.start()
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_+"):
                continue  # inside a word or a longer number: "ref12345678901"
            spans += _numbers_in_run(text, start, run.end(), wants)
    if "date_of_birth" in wants:
        if any(hint in lower for hint in _BIRTH_HINTS):
            for match in _DOB.finditer(text):
                if _plausible_date(match):
                    spans.append(PiiSpan("date_of_birth", *match.span("date")))
        # Without a cue, only dates from before 2000 count (see the module docstring).
        if "19" in text:
            dates += _OLD_WORD_DATE.finditer(text)
        for match in dates:
            start = match.start()
            if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "/.-"):
                continue
            if _plausible_date(match) and _year(match) < 2000:
                spans.append(PiiSpan("date_of_birth", start, match.end()))
    return spans


def _year(match: re.Match) -> int:
    for group in ("y1", "y2", "y3", "y4"):
        year = match.groupdict().get(group)
        if year:
            # Two-digit years: "90" is 1990 and "05" 2005 (births and recent appointments).
            return int(year) + (1900 if int(year) > 30 else 2000) if len(year) == 2 else int(year)
    return 9999


def _plausible_date(match: re.Match) -> bool:
    """A day and month that can be a date, either way round (UK or US order)."""
    groups = match.groupdict()
    for day_group, month_group in (("d1", "m1"), ("d2", "m2")):
        day, month = groups.get(day_group), groups.get(month_group)
        if day is not None:
            d, m = int(day), int(month)
            return (1 <= d <= 31 and 1 <= m <= 12) or (1 <= m <= 31 and 1 <= d <= 12)
    return True  # month written as a word


def _numbers_in_run(text: str, start: int, end: int, wants: Sequence[str]) -> list[PiiSpan]:
    """Phone and NHS numbers among the digit groups of one run, longest first, left to right."""
    groups = [m.span() for m in _DIGIT_GROUP.finditer(text, start, end)]
    found: list[PiiSpan] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            kind = _classify_number(text, groups[i:j])
            if kind is not None and kind in wants:
                span_start, span_end = groups[i][0], groups[j - 1][1]
                # Keep a leading "+" or "(" and a closing ")" with the number.
                while span_start > start and text[span_start - 1] in "+(":
                    span_start -= 1
                if text[span_start] == "(" and text.find(")", span_start, span_end) < 0:
                    if span_end < end and text[span_end] == ")":
                        span_end += 1
                found.append(PiiSpan(kind, span_start, span_end))
                i = j
                break
        else:
            i += 1
    return found


def _classify_number(text: str, groups: list[tuple[int, int]]) -> str | None:
    """What consecutive digit groups of one run are: "nhs_number", "phone" or None."""
    digits = "".join(text[s:e] for s, e in groups)
    lengths = [e - s for s, e in groups]
    separators = [text[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
    international = groups[0][0] > 0 and text[groups[0][0] - 1] == "+"
    if not international and len(digits) == 10:
        plain = len(groups) == 1
        spaced = lengths == [3, 3, 4] and separators[0] == separators[1] in (" ", "-")
        if (plain or spaced) and is_valid_nhs_number(digits):
            return "nhs_number"
    if international or digits.startswith("00"):
        national = digits[2:] if digits.startswith("00") else digits
        if national.startswith("44"):
            national = national[2:]
            if national.startswith("0"):  # "+44 (0)20 ..."
                national = national[1:]
            ok = len(national) in (9, 10) and national[0] in "123578"
        else:
            ok = 9 <= len(national) <= 15
        # A single-digit first group is only the country code or "(0)".
        return "phone" if ok and max(lengths) >= 2 else None
    if digits.startswith("0") and len(digits) in (10, 11) and digits[1] in "1235789":
        if min(lengths) >= 2 and all(len(sep.strip(" ")) <= 1 for sep in separators):
            return "phone"
    return None


# --------------------------------------------------------------------------------------------
# Names: Matcher patterns and what happens after a match
# --------------------------------------------------------------------------------------------

# Before a name-first phrase these make it a place ("When I was in France my therapist ...").
_PLACE_BEFORE = frozenset("in at near around outside inside".split())
# Keys of the patterns whose name comes first ("Sarah my CPN"); in the others it comes last.
_NAME_FIRST = ("role_after", "is_role")
_SIGN_OFF_KEYS = ("sign_off", "dash_sign_off")


# Cue classes, stored as the NORM of the cue words' lexemes in the finder's own vocabulary
# (see _mark_cue_words). A Matcher pattern token such as {"NORM": ROLE} is one integer
# comparison; {"LOWER": {"IN": roles}} is a Python "extra predicate" that spaCy evaluates on
# every token of every text, which made matching ten times slower than tokenising.
_TITLE_ABBR, _TITLE_WORD, _ROLE, _PERSON = "__title_abbr__", "__title__", "__role__", "__person__"
_THANK, _SIGN_OFF, _DET, _DASH, _CALLED = (
    "__thank__",
    "__sign_off__",
    "__det__",
    "__dash__",
    "__called__",
)
_LINK, _FILL = "__link__", "__fill__"


def _mark_cue_words(vocab) -> None:
    """Set the NORM of each cue word's lexemes (all casings) to its cue class.

    Only the finder's private vocabulary (see _pipeline) is changed; nothing else reads these
    norms. Titles are case-sensitive ("Miss Jenna" vs "I miss Jenna"), so only their
    written forms are marked; a title-case role that is also a title ("Nurse") stays a title.
    """
    classes = [
        (_ROLE, _ROLES),
        (_PERSON, _PERSON_NOUNS - _ROLES),
        (_THANK, _THANKS),
        (_SIGN_OFF, _SIGN_OFFS - _THANKS),
        (_DET, _DETERMINERS),
        (_CALLED, {"called", "named"}),
        (_LINK, {"is", "was", "as"}),
        (_FILL, {"so", "very", "much", "again", "to", "lot", "ever", "soo", "sooo"}),
    ]
    for norm, words in classes:
        for word in words:
            for form in {word, word.title(), word.upper()}:
                vocab[form].norm_ = norm
    for form in {"-", "–", "—", "~"}:
        vocab[form].norm_ = _DASH
    for title in _TITLES:
        vocab[title].norm_ = _TITLE_WORD if title in _WORD_TITLES else _TITLE_ABBR


def _name_patterns() -> dict[str, list[list[dict]]]:
    """Matcher patterns, by cue: the cue, then the capitalised token where a name starts.

    Only core token attributes are used (NORM set by _mark_cue_words, IS_TITLE, ORTH,
    IS_SPACE), so matching costs about as much as tokenising. Whether the capitalised token
    really starts a name, and how far the name goes ("A. Patel", "Watson-O'Neil"), is decided
    in Python (_phrase_end), as is the name before "my CPN" for the role-after cues.
    """
    capital = {"IS_TITLE": True}  # a name or an initial: "Smith", "A."
    space = {"IS_SPACE": True, "OP": "*"}  # sign-offs often sit on their own line
    comma = {"ORTH": ",", "OP": "?"}
    thank_you = [{"LOWER": "thank"}, {"ORTH": "-", "OP": "?"}, {"LOWER": "you"}]
    thank_tail = [{"NORM": _FILL, "OP": "*"}, {"IS_PUNCT": True, "OP": "?"}, capital]
    return {
        # "DR. Louise" keeps its dot as a token; "Nurse. Relating to ..." is a sentence end.
        "title": [
            [{"NORM": _TITLE_ABBR}, {"ORTH": ".", "OP": "?"}, capital],
            [{"NORM": _TITLE_WORD}, {"ORTH": ",", "OP": "?"}, capital],  # "Nurse, Christy,"
        ],
        "role_before": [
            [
                {"NORM": _ROLE},
                {"IS_PUNCT": True, "OP": "?"},  # checked in _name_spans: , ( - :
                {"NORM": _LINK, "OP": "?"},
                {"NORM": _CALLED, "OP": "?"},
                capital,
            ]
        ],
        "person_called": [[{"NORM": _PERSON}, {"NORM": _CALLED}, capital]],
        "thanks": [[{"NORM": _THANK}, *thank_tail], [*thank_you, *thank_tail]],
        "sign_off": [
            [{"NORM": _SIGN_OFF}, comma, space, capital],
            [{"NORM": _THANK}, comma, space, capital],
            [{"LOWER": "love"}, {"LOWER": "from"}, space, capital],
        ],
        "dash_sign_off": [[{"NORM": _DASH}, space, capital]],
        "my_name": [[{"LOWER": "name"}, {"NORM": _LINK}, capital]],
        # The name comes right before these: "Sarah my CPN", "Tom (my care coordinator)",
        # "Dave is a great CCO", "recommending Megan as a PWP". Checked in _name_spans.
        "role_after": [[{"NORM": _DET}, {"IS_ALPHA": True, "OP": "{0,2}"}, {"NORM": _ROLE}]],
        "is_role": [
            [{"NORM": _LINK}, {"NORM": _DET}, {"IS_ALPHA": True, "OP": "{0,3}"}, {"NORM": _ROLE}]
        ],
    }


def _is_name_token(token) -> bool:
    """The same test as the Matcher's name token, for walking a phrase token by token."""
    return (
        token.is_title
        and token.lower_ not in _NEVER_NAMES
        and token.lower_ not in _PLACE_WORDS
        and _NAME_START_RE.match(token.text) is not None
    )


def _is_initial(token) -> bool:
    return _INITIAL_RE.fullmatch(token.text) is not None


def _phrase_end(doc, start: int, title: bool = False) -> int:
    """End of the name phrase starting at ``start``: initials, then names, maybe hyphenated.

    After a title the first name may be a place word ("Mrs Hall"); ``start`` itself is
    returned when no name starts there.
    """
    i = start
    while i < len(doc) and i < start + 2 and _is_initial(doc[i]):
        i += 1
    first_ok = i < len(doc) and (
        _is_name_token(doc[i]) or (title and doc[i].is_title and doc[i].lower_ in _PLACE_WORDS)
    )
    if not first_ok:
        return start
    i += 1
    while i < len(doc) and i < start + 4:
        if _is_name_token(doc[i]):
            i += 1
        elif doc[i].text == "-" and i + 1 < len(doc) and _is_name_token(doc[i + 1]):
            i += 2
        else:
            break
    return i


def _phrase_start(doc, end: int) -> int:
    """Start of the name phrase ending at ``end`` (exclusive; ``doc[end - 1]`` is a name)."""
    i = end - 1
    while i > 0 and end - i < 4:
        previous = doc[i - 1]
        if _is_name_token(previous) or _is_initial(previous):
            i -= 1
        elif previous.text == "-" and i > 1 and _is_name_token(doc[i - 2]):
            i -= 2
        else:
            break
    return i


def _followed_by_place_or_capital(doc, end: int) -> bool:
    """'Harvey Ward', 'Notts Mental Health Team': a place or service name, not a person."""
    if end >= len(doc):
        return False
    token = doc[end]
    if token.lower_ in _PLACE_WORDS:
        return True
    if token.is_upper and token.is_alpha and len(token) >= 2:
        return True  # "Broxtowe and Hucknall CMHT": a service's acronym follows
    return token.is_title and token.is_alpha and token.text not in _TITLES


def _plausible_first_word(doc, start: int, end: int) -> bool:
    """For "Sarah my CPN" patterns, whose name often opens a sentence: rule out the usual
    sentence openers ("Especially the nurse", "Building my son's confidence") and places
    ("When I was in France my therapist ...")."""
    if start > 0 and doc[start - 1].lower_ in _PLACE_BEFORE:
        return False
    if end - start == 1:
        word = doc[start].lower_
        if word.endswith("ing") or (word.endswith(("ly", "ed")) and len(word) >= 6):
            return False  # "Building my ...", "Especially the ...", "Praised the nurses"
    return True


def _inside_proper_noun(doc, role: int) -> bool:
    """A capitalised role word inside a capitalised name: "Service User & Carer Experience"."""
    token = doc[role]
    if not token.is_title or role == 0:
        return False
    before = doc[role - 1]
    return before.is_title and before.is_alpha and before.lower_ not in _DETERMINERS


def _list_ends_in_place(doc, end: int) -> bool:
    """'Broxtowe and Hucknall CMHT': a list of places that ends in a service's name."""
    if end >= len(doc) or doc[end].lower_ not in {"and", "&"}:
        return False
    after = _phrase_end(doc, end + 1)
    return after > end + 1 and _followed_by_place_or_capital(doc, after)


def _only_trailing(doc, end: int, text_ends: frozenset[int]) -> bool:
    """Nothing but punctuation, spaces, emoji or kisses from token ``end`` to the end of its
    text (a signature). ``text_ends`` holds the separator tokens that close a whole text."""
    for token in doc[end:]:
        if token.text == _WINDOW_SEPARATOR:
            return token.i in text_ends
        if token.is_punct or token.is_space or not token.is_alpha:
            continue
        if set(token.lower_) == {"x"}:
            continue
        return False
    return True


def _name_spans(doc, matcher, strings, text_ends: frozenset[int]) -> list[tuple[int, int]]:
    """Character spans of the cued names in ``doc``: windows of texts joined by separators
    (see PiiFinder.analyse_many); ``text_ends`` as for :func:`_only_trailing`."""
    found: dict[tuple[int, int], tuple[int, int]] = {}  # name (start, end) -> cue (start, end)
    for match_id, start, end in matcher(doc):
        key = strings[match_id]
        if key in _NAME_FIRST:
            # The name ends just before the match, maybe with a comma or bracket in between.
            name_end = start - 1 if start > 0 and doc[start - 1].text in {",", "("} else start
            if name_end == 0 or not _is_name_token(doc[name_end - 1]):
                continue
            name_start = _phrase_start(doc, name_end)
            if not _plausible_first_word(doc, name_start, name_end):
                continue
        else:
            if key == "role_before" and doc[start + 1].is_punct:
                if doc[start + 1].text not in {",", "(", "-", ":", "–"}:
                    continue  # "my therapist. Sarah ..." is a new sentence
            name_start = end - 1
            name_end = _phrase_end(doc, name_start, title=key == "title")
            if name_end <= name_start:
                continue
            if key in _SIGN_OFF_KEYS and not _only_trailing(doc, name_end, text_ends):
                continue
            if _followed_by_place_or_capital(doc, name_end):
                continue
            if key != "title" and _list_ends_in_place(doc, name_end):
                continue
            if key == "role_before" and _inside_proper_noun(doc, start):
                continue
        found[(name_start, name_end)] = (min(start, name_start), max(end, name_end))
    if not found:
        return []
    _extend_lists(doc, found)
    return [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1].text)) for s, e in found]


_LIST_JOINERS = frozenset({",", "and", "&", "+"})
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_NEXT_WORD = re.compile(r"[ \t]+([^\W\d_]+)")


def _extend_lists(doc, found: dict) -> None:
    """Names listed with a cued name are cued too: "Dr Schofield, Dianne and Mark".

    A comma only joins names inside a list that goes on with "and"/"&" ("Fay, Nicky and Dr
    Gordon"), so that "Overall, Dr Smith" or "Dr Smith, Lovely man" add nothing.
    """
    queue = list(found.items())
    while queue:
        (name_start, name_end), (cue_start, cue_end) = queue.pop()
        # To the right: "and Mark", "& Zoe", ", Dianne and", "and Dr Fred".
        joiner = max(name_end, cue_end)
        if joiner < len(doc) and doc[joiner].lower_ in _LIST_JOINERS:
            start = joiner + 1
            if start < len(doc) and doc[start].text in _TITLES:
                start += 2 if start + 1 < len(doc) and doc[start + 1].text == "." else 1
            end = _phrase_end(doc, start)
            comma_ok = doc[joiner].text != "," or _list_goes_on(doc, end)
            if end > start and comma_ok and not _followed_by_place_or_capital(doc, end):
                if (start, end) not in found:
                    found[(start, end)] = (joiner, end)
                    queue.append(((start, end), (joiner, end)))
        # To the left: "Trevor & Dr Fred", "Jen Thompson and Dr Schofield".
        joiner = cue_start - 1
        if joiner > 0 and doc[joiner].lower_ in _LIST_JOINERS:
            if doc[joiner].text == "," and not _list_goes_on(doc, cue_start):
                continue
            end = joiner
            if not _is_name_token(doc[end - 1]):
                continue
            start = _phrase_start(doc, end)
            if (start, end) not in found:
                found[(start, end)] = (start, cue_end)
                queue.append(((start, end), (start, cue_end)))


def _list_goes_on(doc, index: int) -> bool:
    """Whether "and"/"&" follows ``index`` before the clause ends (so a comma joins names)."""
    for token in doc[index : index + 6]:
        if token.lower_ in {"and", "&"}:
            return True
        if (token.is_punct and token.text != ",") or token.text == _WINDOW_SEPARATOR:
            return False
    return False


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_'’-"


def _add_repeats(text: str, names: list[PiiSpan]) -> list[PiiSpan]:
    """``names`` plus other mentions of the same names anywhere in ``text``.

    "Thank you to Monica ... Monica was lovely": the second "Monica" has no cue of its own.
    """
    if not names:
        return names
    words = {
        word
        for span in names
        for word in _WORD.findall(text, span.start, span.end)
        if len(word) > 1 and word.istitle() and word.lower() not in _NEVER_NAMES
    }
    if not words:
        return names
    covered = [(span.start, span.end) for span in names]
    extra = []
    # str.find rather than a regex of the names: compiling a pattern per text costs more
    # than the whole search.
    for word in words:
        start = text.find(word)
        while start >= 0:
            end = start + len(word)
            boundary = (start == 0 or not _is_word_char(text[start - 1])) and (
                end == len(text) or not _is_word_char(text[end])
            )
            if boundary and not any(s <= start < e for s, e in covered):
                following = _NEXT_WORD.match(text, end)
                if not (
                    following
                    and (
                        following.group(1).lower() in _PLACE_WORDS
                        or (following.group(1).istitle() and following.group(1) not in _TITLES)
                    )
                ):  # "Harvey Ward", "Monica Street" are places
                    extra.append(PiiSpan("name", start, end))
            start = text.find(word, end)
    return names + extra


def _resolve(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Sorted, non-overlapping spans: longer spans first, then the more specific kind."""
    if len(spans) <= 1:
        return spans
    ranked = sorted(spans, key=lambda s: (-(s.end - s.start), _SPECIFICITY[s.kind], s.start))
    kept: list[PiiSpan] = []
    for span in ranked:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


# --------------------------------------------------------------------------------------------
# Redaction and table columns
# --------------------------------------------------------------------------------------------


def redact(text: str, spans: Iterable[PiiSpan]) -> str:
    """``text`` with each span replaced by its kind's placeholder (see ``PLACEHOLDERS``).

    Parameters
    ----------
    text : str
    spans : iterable of PiiSpan
        Non-overlapping spans, e.g. from :meth:`PiiFinder.find`.

    Returns
    -------
    str

    Examples
    --------
    >>> redact("Call 07700 900123", [PiiSpan("phone", 5, 17)])
    'Call [PHONE]'
    """
    pieces = []
    position = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < position:
            continue  # overlapping input: keep the first span
        pieces.append(text[position : span.start])
        pieces.append(PLACEHOLDERS[span.kind])
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def pii_columns(
    texts: Iterable[object], redact: bool = False, finder: PiiFinder | None = None
) -> dict[str, list]:
    """Spreadsheet columns describing the personal data in each text.

    Parameters
    ----------
    texts : iterable
        The texts; values that are not strings (None, NaN, numbers) get empty results.
    redact : bool, default False
        Also return the column ``redacted_text``.
    finder : PiiFinder, optional
        A finder to reuse (its spaCy pipeline is built once); a new one when None.

    Returns
    -------
    dict of str to list
        ``pii``: the kinds found in each text, in ``KINDS`` order, joined by "; " ("" if none);
        ``pii_redacted``: the number of already-redacted markers (int); with ``redact=True``,
        ``redacted_text``: the text with placeholders (non-text values unchanged). Each list
        has one entry per text, in order.

    Examples
    --------
    >>> pii_columns(["Dr Smith: 07700 900123", None, "[Name Redacted] was kind"], redact=True)
    {'pii': ['phone; name', '', ''], 'pii_redacted': [0, 0, 1], \
'redacted_text': ['Dr [NAME]: [PHONE]', None, '[Name Redacted] was kind']}
    """
    texts = list(texts)
    finder = PiiFinder() if finder is None else finder
    results = finder.analyse_many(texts)
    found = []
    for spans, _ in results:
        if spans:
            kinds = {span.kind for span in spans}
            found.append("; ".join(kind for kind in KINDS if kind in kinds))
        else:
            found.append("")  # most rows: keep the common case cheap
    columns: dict[str, list] = {
        PII_COLUMN: found,
        REDACTED_COLUMN: [count for _, count in results],
    }
    if redact:
        columns[REDACTED_TEXT_COLUMN] = [
            _redact_value(text, spans) for text, (spans, _) in zip(texts, results, strict=True)
        ]
    return columns


def _redact_value(value: object, spans: list[PiiSpan]) -> object:
    if not isinstance(value, str) or not spans:
        return value
    return redact(value, spans)
